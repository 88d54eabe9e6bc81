"""The spool's series numbering and newest reading per series, beside its queue.

The energy engine numbers series (device, field) through the store; InfluxDB has no such
numbers, so the spool keeps them, and the newest reading it queued per series, so that a
restarted collector resumes its energy integration without asking the server (which may be
down). Another process may add series to the same file: unknown numbers are looked up again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, device TEXT NOT NULL, "
    "field TEXT NOT NULL, UNIQUE(device, field))",
    "CREATE TABLE IF NOT EXISTS latest(series INTEGER PRIMARY KEY, t INTEGER NOT NULL, value REAL)",
)


class SpoolSeries:
    """Series numbers and newest readings, in the spool's SQLite file."""

    def __init__(
        self,
        db: sqlite3.Connection,
        lock: AbstractContextManager[bool],
        errors: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = db
        self._lock = lock
        self._errors = errors
        for statement in SCHEMA:
            db.execute(statement)
        self._ids: dict[tuple[str, str], int] = {}
        self._names: dict[int, tuple[str, str]] = {}
        self._reload()

    def _reload(self) -> None:
        for i, d, f in self._db.execute("SELECT id, device, field FROM series"):
            self._ids[(d, f)] = i
            self._names[i] = (d, f)

    def series_id(self, device: str, field: str) -> int:
        """The stable number of a (device, field) series, created on first use."""
        sid = self._ids.get((device, field))
        if sid is None:
            with self._lock, self._errors():
                self._db.execute(
                    "INSERT OR IGNORE INTO series(device, field) VALUES (?, ?)", (device, field)
                )
                (sid,) = self._db.execute(
                    "SELECT id FROM series WHERE device=? AND field=?", (device, field)
                ).fetchone()
            self._ids[(device, field)] = sid
            self._names[sid] = (device, field)
        return int(sid)

    def name(self, sid: int) -> tuple[str, str]:
        """(device, field) of a series number."""
        found = self._names.get(sid)
        if found is None:
            with self._lock, self._errors():
                self._reload()
            found = self._names[sid]
        return found

    def save_latest(self, latest: Mapping[int, tuple[int, float]]) -> None:
        """Record a batch's newest reading per series (inside the caller's transaction)."""
        self._db.executemany(
            # the engine's newest reading of a series only moves forward
            "INSERT OR REPLACE INTO latest VALUES (?, ?, ?)",
            [(s, t, v) for s, (t, v) in latest.items()],
        )

    def last_times(self) -> dict[tuple[str, str], int]:
        """The newest reading queued per (device, field), sent or not."""
        with self._lock, self._errors():
            rows = self._db.execute("SELECT series, t FROM latest").fetchall()
        return {self.name(s): int(t) for s, t in rows}

    def latest(self, field: str) -> dict[str, tuple[int, float]]:
        """The newest (time ms, value) queued of a field, per device."""
        with self._lock, self._errors():
            rows = self._db.execute("SELECT series, t, value FROM latest").fetchall()
        out = {}
        for s, t, v in rows:
            device, f = self.name(s)
            if f == field:
                out[device] = (int(t), float(v))
        return out
