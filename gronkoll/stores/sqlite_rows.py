"""The rows one batch adds to the SQLite store, and the statements that carry them.

Writing is the collector's hot path (about 500 messages a batch, each batch its own
transaction), so both halves are shaped for speed:

* `insert_rows` sends up to ROWS_PER_STATEMENT rows in one multi-row INSERT. Every statement
  step has a fixed cost (bind, step and reset in SQLite, a turn of executemany's loop in
  Python) that then falls on 64 rows instead of one: a batch's readings go in about a third
  faster than with executemany one row at a time (bench/store_write.py).
* `rollup_rows` builds a batch's hour and day rollup rows in one pass over its energy, each
  day row summed from the hour rows of its key as they are made, in the same order of
  additions as before, so the stored sums are the same to the last bit.
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
    no site where another meter measures the device). Sorted rows walk each rollup table's
    B-tree in key order, which the upserts need fewer page visits for.
    """
    hour_rows: list[RollupRow] = []
    day_rows: list[RollupRow] = []
    # (quantity, dim, key) -> {hour: Wh}: the site, group and kind sums of the batch
    shared: dict[tuple[int, int, str], dict[int, float]] = {}
    for (quantity, device), hours in hourly.items():
        q = QUANTITIES[quantity]
        _add_key(hour_rows, day_rows, local_day, q, 0, device, hours)
        a = attribution[device]
        for dim, name in ((1, a.site), (2, a.group), (3, a.kind)):
            if name is None:
                continue
            acc = shared.get((q, dim, name))
            if acc is None:
                # 0.0 + Wh, as the sums always began (it differs from Wh for -0.0 alone)
                shared[(q, dim, name)] = {h: 0.0 + wh for h, wh in hours.items()}
            else:
                for h, wh in hours.items():
                    acc[h] = acc.get(h, 0.0) + wh
    for (q, dim, name), hours in shared.items():
        _add_key(hour_rows, day_rows, local_day, q, dim, name, hours)
    hour_rows.sort()
    day_rows.sort()
    return hour_rows, day_rows


def _add_key(
    hour_rows: list[RollupRow],
    day_rows: list[RollupRow],
    local_day: Callable[[int], int],
    q: int,
    dim: int,
    key: str,
    hours: Mapping[int, float],
) -> None:
    """One key's hour rows, and its day rows summed from them in hour order."""
    if len(hours) == 1:  # the usual case: a batch spans seconds, not hours
        for h, wh in hours.items():
            hour_rows.append((q, dim, h, key, wh))
            day_rows.append((q, dim, local_day(h), key, 0.0 + wh))
        return
    days: dict[int, float] = {}
    for h, wh in hours.items():
        hour_rows.append((q, dim, h, key, wh))
        day = local_day(h)
        days[day] = days.get(day, 0.0) + wh
    day_rows.extend([(q, dim, day, key, wh) for day, wh in days.items()])
