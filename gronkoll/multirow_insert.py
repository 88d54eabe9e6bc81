"""Multi-row INSERT statements: many rows bound and stepped as one statement.

Every statement step has a fixed cost (bind, step and reset in the database, a turn of the
driver's executemany loop in Python) that a statement of ROWS_PER_STATEMENT rows pays once
for all of them: on the collector's hot paths (a batch's readings and rollups in the SQLite
store, every device's integration state in the state database, the MQTT redelivery journal)
rows go in at about 40-50 % less cost each than with executemany one row a statement
(bench/store_write.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

#: Rows one INSERT statement carries (64 x 6 parameters stays far below every limit).
ROWS_PER_STATEMENT = 64

#: Runs one statement for each parameter tuple: sqlite3's executemany, or SQLAlchemy's
#: Connection.exec_driver_sql.
ExecuteMany = Callable[[str, list[tuple[Any, ...]]], object]


def param_mark(paramstyle: str) -> str:
    """The positional parameter mark of a DB-API driver: ? for sqlite3 (qmark), %s for psycopg."""
    return "?" if paramstyle == "qmark" else "%s"


@lru_cache(maxsize=64)
def values_sql(head: str, tail: str, width: int, rows: int, mark: str = "?") -> str:
    """`head VALUES (?, ...), ... tail` for `rows` rows of `width` columns."""
    row = "(" + ",".join([mark] * width) + ")"
    return f"{head} VALUES {','.join([row] * rows)} {tail}"


def insert_rows(
    execute_many: ExecuteMany,
    head: str,
    rows: Sequence[Sequence[Any]],
    *,
    tail: str = "",
    mark: str = "?",
) -> None:
    """INSERT rows in order: full statements of ROWS_PER_STATEMENT rows, then the rest singly.

    The rest goes one row a statement so that only two statements per table exist, both kept
    prepared in the driver's statement cache. Rows keep their order (rowids follow it). The
    rows of one statement must not conflict with each other where ``tail`` is an upsert
    clause (PostgreSQL refuses to update a row twice in one statement). ``mark`` is the
    driver's positional parameter mark: ? for sqlite3, %s for psycopg.
    """
    if not rows:
        return
    size = ROWS_PER_STATEMENT
    full = len(rows) - len(rows) % size
    if full:
        execute_many(
            values_sql(head, tail, len(rows[0]), size, mark),
            [tuple(chain.from_iterable(rows[i : i + size])) for i in range(0, full, size)],
        )
    if full < len(rows):
        execute_many(values_sql(head, tail, len(rows[0]), 1, mark), [tuple(r) for r in rows[full:]])
