"""The embedded time-series store: one SQLite file in WAL mode, with rollups kept at write time.

Readings are appended to a table without an index (the cheapest write SQLite has); each
write also records the row range and time span it added in ``blocks``, a block-range index
that time queries use to find rows. Energy is rolled up per UTC hour and per local day, for
each device and for the site, group and kind the device belonged to when it was written, so
a report over a year reads a few thousand rollup rows and never the raw readings.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gronkoll.energy import MS_PER_HOUR, Batch, Hourly
from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.multirow_insert import insert_rows
from gronkoll.stores.base import DIMENSIONS, Attribution, WriteResult
from gronkoll.stores.sqlite_rollups import QUANTITIES, rollup_rows

DIM_CODES = {name: code for code, name in enumerate(DIMENSIONS)}
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, field TEXT NOT NULL, UNIQUE(device, field));
CREATE TABLE IF NOT EXISTS readings(
    series INTEGER NOT NULL, t INTEGER NOT NULL, value REAL, t0 INTEGER, wh REAL,
    flag INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks(
    first_row INTEGER NOT NULL, last_row INTEGER NOT NULL, t_min INTEGER NOT NULL,
    t_max INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_time ON blocks(t_max, t_min);
CREATE TABLE IF NOT EXISTS latest(
    series INTEGER PRIMARY KEY, t INTEGER NOT NULL, value REAL);
CREATE TABLE IF NOT EXISTS events(
    device TEXT NOT NULL, t INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_device ON events(device, t);
CREATE TABLE IF NOT EXISTS rollup_hour(
    quantity INTEGER NOT NULL, dim INTEGER NOT NULL, hour INTEGER NOT NULL, key TEXT NOT NULL,
    wh REAL NOT NULL, PRIMARY KEY(quantity, dim, hour, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_day(
    quantity INTEGER NOT NULL, dim INTEGER NOT NULL, day INTEGER NOT NULL, key TEXT NOT NULL,
    wh REAL NOT NULL, PRIMARY KEY(quantity, dim, day, key)) WITHOUT ROWID;
"""


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction begun at once (IMMEDIATE), rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _translate(err: sqlite3.Error, path: Path) -> StoreError:
    text = str(err)
    if "locked" in text or "busy" in text:
        return StoreUnavailable(f"{path}: the store is locked by another process ({text})")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreUnavailable(f"{path}: the store cannot be written ({text})")
    return StoreError(f"{path}: {text}")


class SqliteStore:
    """Time-series store in one SQLite file (WAL)."""

    def __init__(self, path: Path, tz: ZoneInfo, *, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.tz = tz
        # Series numbered and not committed yet (see series_id): (id, device, field).
        self._unsaved: list[tuple[int, str, str]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA cache_size=-65536")
            self._db.execute("PRAGMA temp_store=MEMORY")
            with immediate_transaction(self._db):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._check_meta()
        except sqlite3.Error as err:
            raise _translate(err, path) from None
        except OSError as err:
            raise StoreUnavailable(f"{path}: cannot open the store: {err.strerror}") from None
        self._series: dict[tuple[str, str], int] = {
            (d, f): i for i, d, f in self._db.execute("SELECT id, device, field FROM series")
        }
        self._day_of_hour: dict[int, int] = {}

    # -- housekeeping --------------------------------------------------------------------
    def _begin(self) -> None:
        """Open a transaction unless one is open, with the series numbered and not kept yet.

        A series numbered in a transaction that was rolled back keeps its number: the engine
        already uses it, so it is inserted again, under that number, in the next transaction.
        """
        if self._db.in_transaction:
            return
        self._db.execute("BEGIN IMMEDIATE")
        if self._unsaved:
            self._db.executemany(
                "INSERT INTO series(id, device, field) VALUES (?, ?, ?)", self._unsaved
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; it takes in the series that series_id numbered since the last."""
        self._begin()
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._unsaved.clear()

    def _check_meta(self) -> None:
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", str(SCHEMA_VERSION)), ("timezone", self.tz.key)],
            )
        elif meta.get("timezone") != self.tz.key:
            # Day rollups follow the municipality's local days: rebuild them from the hours.
            self._rebuild_days()
            self._db.execute("UPDATE meta SET value=? WHERE key='timezone'", (self.tz.key,))

    def _rebuild_days(self) -> None:
        self._db.execute("DELETE FROM rollup_day")
        self._day_of_hour = {}
        sums: dict[tuple[int, int, int, str], float] = defaultdict(float)
        for q, dim, hour, key, wh in self._db.execute("SELECT * FROM rollup_hour"):
            sums[(q, dim, self._local_day(hour), key)] += wh
        self._db.executemany(
            "INSERT INTO rollup_day VALUES (?, ?, ?, ?, ?)", [(*k, v) for k, v in sums.items()]
        )

    def close(self) -> None:
        """Close the database file (series numbered and never written are not kept)."""
        self._db.close()

    def _local_day(self, hour: int) -> int:
        day = self._day_of_hour.get(hour)
        if day is None:
            day = datetime.fromtimestamp(hour * 3600, self.tz).date().toordinal()
            self._day_of_hour[hour] = day
        return day

    def series_id(self, device: str, field: str) -> int:
        """The store's number for a (device, field) series, created on first use.

        A new series is inserted in a transaction left open for the next write(), which
        commits it with the readings that use it: one commit for a batch's new series, not
        one each (a new fleet has tens of thousands).
        """
        sid = self._series.get((device, field))
        if sid is None:
            try:
                self._begin()
                cur = self._db.execute(
                    "INSERT INTO series(device, field) VALUES (?, ?)", (device, field)
                )
            except sqlite3.Error as err:
                raise _translate(err, self.path) from None
            sid = self._series[(device, field)] = int(cur.lastrowid or 0)
            self._unsaved.append((sid, device, field))
        return sid

    # -- writing -------------------------------------------------------------------------
    def write(self, batch: Batch, attribution: Mapping[str, Attribution]) -> WriteResult:
        """Store the batch's readings, events and energy rollups in one transaction."""
        if not batch.rows and not batch.events and not self._unsaved:
            return WriteResult(0, 0, 0)
        try:
            with self._transaction():
                self._write_rows(batch)
                if batch.events:
                    self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", batch.events)
                self._write_rollups(batch.hourly, attribution)
        except sqlite3.Error as err:
            raise _translate(err, self.path) from None
        return WriteResult(len(batch.rows), batch.intervals, len(batch.events))

    def _write_rows(self, batch: Batch) -> None:
        if not batch.rows:
            return
        first = self._db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM readings").fetchone()[0]
        insert_rows(self._db.executemany, "INSERT INTO readings", batch.rows)
        self._db.execute(
            "INSERT INTO blocks VALUES (?, ?, ?, ?)",
            (first, first + len(batch.rows) - 1, batch.t_min, batch.t_max),
        )
        insert_rows(
            self._db.executemany,
            "INSERT INTO latest",
            [(s, t, v) for s, (t, v) in batch.latest.items()],
            tail="ON CONFLICT(series) DO UPDATE SET t=excluded.t, value=excluded.value "
            "WHERE excluded.t > latest.t",
        )

    def _write_rollups(self, hourly: Hourly, attribution: Mapping[str, Attribution]) -> None:
        hour_rows, day_rows = rollup_rows(hourly, attribution, self._local_day)
        insert_rows(
            self._db.executemany,
            "INSERT INTO rollup_hour",
            hour_rows,
            tail="ON CONFLICT(quantity, dim, hour, key) DO UPDATE SET wh = wh + excluded.wh",
        )
        insert_rows(
            self._db.executemany,
            "INSERT INTO rollup_day",
            day_rows,
            tail="ON CONFLICT(quantity, dim, day, key) DO UPDATE SET wh = wh + excluded.wh",
        )

    # -- reading -------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise _translate(err, self.path) from None

    def energy_by_hour(
        self, quantity: str, dim: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, str, float]]:
        """(hour start ms, key, Wh) per UTC hour in [start, end)."""
        rows = self._query(
            "SELECT hour, key, wh FROM rollup_hour "
            "WHERE quantity=? AND dim=? AND hour>=? AND hour<?",
            (
                QUANTITIES[quantity],
                DIM_CODES[dim],
                start_ms // MS_PER_HOUR,
                -(-end_ms // MS_PER_HOUR),
            ),
        )
        return [(int(h) * MS_PER_HOUR, str(k), float(w)) for h, k, w in rows]

    def energy_by_day(
        self, quantity: str, dim: str, first: date, end: date
    ) -> list[tuple[date, str, float]]:
        """(local date, key, Wh) per local day in [first, end)."""
        rows = self._query(
            "SELECT day, key, wh FROM rollup_day WHERE quantity=? AND dim=? AND day>=? AND day<?",
            (QUANTITIES[quantity], DIM_CODES[dim], first.toordinal(), end.toordinal()),
        )
        return [(date.fromordinal(int(d)), str(k), float(w)) for d, k, w in rows]

    def latest(self, field: str) -> dict[str, tuple[int, float]]:
        """The newest (time ms, value) of a field per device."""
        rows = self._query(
            "SELECT s.device, l.t, l.value FROM latest l JOIN series s ON s.id = l.series "
            "WHERE s.field = ?",
            (field,),
        )
        return {str(d): (int(t), float(v)) for d, t, v in rows}

    def last_times(self) -> dict[tuple[str, str], int]:
        """The newest stored reading time per (device, field)."""
        rows = self._query(
            "SELECT s.device, s.field, l.t FROM latest l JOIN series s ON s.id = l.series"
        )
        return {(str(d), str(f)): int(t) for d, f, t in rows}

    def readings(
        self, start_ms: int, end_ms: int, device: str | None = None
    ) -> list[tuple[str, str, int, float, int | None, float | None, int]]:
        """Stored readings with start <= t < end, found through the block index."""
        ranges = self._query(
            "SELECT first_row, last_row FROM blocks WHERE t_max >= ? AND t_min < ?",
            (start_ms, end_ms),
        )
        names = {i: k for k, i in self._series.items()}
        out = []
        for first, last in ranges:
            for s, t, v, t0, wh, flag in self._query(
                "SELECT series, t, value, t0, wh, flag FROM readings "
                "WHERE rowid BETWEEN ? AND ? AND t >= ? AND t < ?",
                (first, last, start_ms, end_ms),
            ):
                d, f = names[s]
                if device is None or d == device:
                    out.append((d, f, t, v, t0, wh, flag))
        out.sort(key=lambda r: (r[2], r[0], r[1]))
        return out

    def events(
        self, device: str | None = None, limit: int = 100
    ) -> list[tuple[str, int, str, str]]:
        """The newest events, optionally of one device."""
        if device is None:
            rows = self._query("SELECT * FROM events ORDER BY t DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                "SELECT * FROM events WHERE device=? ORDER BY t DESC LIMIT ?", (device, limit)
            )
        return [(str(d), int(t), str(k), str(x)) for d, t, k, x in rows]

    def counts(self) -> dict[str, int]:
        """Rows stored: readings, energy intervals, events."""
        (readings,) = self._query("SELECT count(*) FROM readings")[0]
        (intervals,) = self._query("SELECT count(*) FROM readings WHERE wh IS NOT NULL")[0]
        (events,) = self._query("SELECT count(*) FROM events")[0]
        return {"readings": int(readings), "intervals": int(intervals), "events": int(events)}
