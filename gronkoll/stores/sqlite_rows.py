"""The rows one batch adds to the SQLite store, and the statements that carry them.

Writing is the collector's hot path (about 500 messages a batch, each batch its own
transaction), so both halves are shaped for speed:

* `insert_rows` sends up to ROWS_PER_STATEMENT rows in one multi-row INSERT. Every statement
  step has a fixed cost (bind, step and reset in SQLite, a turn of executemany's loop in
  Python) that then falls on 64 rows instead of one: a batch's readings go in about a third
  faster than with executemany one row at a time (bench/store_write.py).
* `rollup_rows` builds a batch's hour and day rollup rows with a few dict operations per
  device and hour, each day row summed from the hour rows already summed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from gronkoll.energy import Hourly
from gronkoll.stores.base import Attribution

QUANTITIES = {"electricity": 0, "heat": 1}

#: Rows one INSERT statement carries (64 x 6 parameters stays far below SQLite's limit).
ROWS_PER_STATEMENT = 64

RollupRow = tuple[int, int, int, str, float]  # (quantity, dim, hour or day, key, Wh)


@lru_cache(maxsize=32)
def _values_sql(head: str, tail: str, width: int, rows: int) -> str:
    """`head VALUES (?, ...), ... tail` for `rows` rows of `width` columns."""
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([row] * rows)} {tail}"


def insert_rows(
    db: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], *, tail: str = ""
) -> None:
    """INSERT rows in order: full statements of ROWS_PER_STATEMENT rows, then the rest singly.

    The rest goes one row a statement so that only two statements per table exist, both kept
    prepared in sqlite3's statement cache. Rows keep their order (rowids follow it). Each
    statement's rows must not conflict with each other where ``tail`` is an upsert clause.
    """
    if not rows:
        return
    width = len(rows[0])
    full = len(rows) - len(rows) % ROWS_PER_STATEMENT
    if full:
        flat = list(chain.from_iterable(rows[:full]))
        step = width * ROWS_PER_STATEMENT
        db.executemany(
            _values_sql(head, tail, width, ROWS_PER_STATEMENT),
            [flat[i : i + step] for i in range(0, len(flat), step)],
        )
    if full < len(rows):
        db.executemany(_values_sql(head, tail, width, 1), rows[full:])


def rollup_rows(
    hourly: Hourly, attribution: Mapping[str, Attribution], local_day: Callable[[int], int]
) -> tuple[list[RollupRow], list[RollupRow]]:
    """A batch's hour and day rollup rows, each (quantity, dim, hour or day, key) once, sorted.

    Rows for the device (dim 0) and for the site, group and kind it belongs to (dims 1-3;
    no site where another meter measures the device); each day row sums its key's hour
    rows. Every sum starts at 0.0 and adds in the batch's order, as this code always has,
    so the stored sums are the same to the last bit. Sorted rows walk each rollup table's
    B-tree in key order.
    """
    hour_rows: list[RollupRow] = []
    # (quantity, dim, key, hour) -> Wh: the site, group and kind sums of the batch. One flat
    # dict costs one lookup per device, dim and hour; each key's hours keep their order.
    shared: dict[tuple[int, int, str, int], float] = {}
    for (quantity, device), hours in hourly.items():
        q = QUANTITIES[quantity]
        a = attribution[device]
        for h, wh in hours.items():
            hour_rows.append((q, 0, h, device, wh))
            if a.site is not None:
                shared[(q, 1, a.site, h)] = shared.get((q, 1, a.site, h), 0.0) + wh
            shared[(q, 2, a.group, h)] = shared.get((q, 2, a.group, h), 0.0) + wh
            shared[(q, 3, a.kind, h)] = shared.get((q, 3, a.kind, h), 0.0) + wh
    hour_rows.extend([(q, dim, h, key, wh) for (q, dim, key, h), wh in shared.items()])
    days: dict[tuple[int, int, int, str], float] = {}
    for q, dim, h, key, wh in hour_rows:
        day = (q, dim, local_day(h), key)
        days[day] = days.get(day, 0.0) + wh
    hour_rows.sort()
    return hour_rows, sorted([(*day, wh) for day, wh in days.items()])
