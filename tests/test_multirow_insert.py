"""Multi-row INSERT statements (gronkoll/multirow_insert.py), on SQLite through sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gronkoll.multirow_insert import ROWS_PER_STATEMENT, insert_rows, values_sql

UPSERT = "ON CONFLICT(k) DO UPDATE SET v = v + excluded.v"


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    db.execute("CREATE TABLE t(a INTEGER, b TEXT, c REAL)")
    db.execute("CREATE TABLE u(k INTEGER PRIMARY KEY, v REAL NOT NULL)")
    return db


@pytest.mark.parametrize(
    "count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, ROWS_PER_STATEMENT * 2 + 5]
)
def test_every_row_is_inserted_once_in_order(db: sqlite3.Connection, count: int) -> None:
    rows = [(i, f"r{i}", i / 3 if i % 2 else None) for i in range(count)]
    insert_rows(db.executemany, "INSERT INTO t", rows)
    assert db.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows


def test_an_upsert_tail_applies_to_rows_in_full_and_partial_statements(
    db: sqlite3.Connection,
) -> None:
    count = ROWS_PER_STATEMENT + 3
    insert_rows(db.executemany, "INSERT INTO u", [(k, 1.0) for k in range(count)], tail=UPSERT)
    insert_rows(
        db.executemany, "INSERT INTO u", [(k, 0.5) for k in range(0, count + 2, 2)], tail=UPSERT
    )
    got = dict(db.execute("SELECT k, v FROM u").fetchall())
    assert got == {k: (1.5 if k % 2 == 0 else 1.0) for k in range(count)} | {count + 1: 0.5}


def test_the_statement_has_a_row_of_marks_per_row() -> None:
    assert values_sql("INSERT INTO t", "", 2, 3) == "INSERT INTO t VALUES (?,?),(?,?),(?,?) "
    sql = values_sql("INSERT INTO t", "ON CONFLICT DO NOTHING", 1, 2, "%s")
    assert sql == "INSERT INTO t VALUES (%s),(%s) ON CONFLICT DO NOTHING"
