"""Running energy totals per (quantity, device, UTC hour), kept in the spool's SQLite file.

InfluxDB's ``energy`` points hold an hour's total so far (docs/influxdb.md): each batch adds
its increments here, inside the transaction that queues the batch's lines, and the lines carry
the new totals. So a total is never counted twice or lost, whatever stops the process. Totals
are cached in memory, an hour at a time; totals untouched for 40 days are forgotten, so the
file does not grow for ever (a later write to such an hour starts from zero again).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

KEEP_S = 40 * 86400
PRUNE_EVERY_S = 3600

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS totals(quantity TEXT NOT NULL, device TEXT NOT NULL, "
    "hour INTEGER NOT NULL, wh REAL NOT NULL, touched_ms INTEGER NOT NULL, "
    "PRIMARY KEY(quantity, device, hour)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS totals_hour ON totals(hour)",
)

Key = tuple[str, str, int]


class HourTotals:
    """The totals table and its cache; every method runs inside the caller's transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        for statement in SCHEMA:
            db.execute(statement)
        self._cache: dict[Key, float] = {}
        self._loaded_hours: set[int] = set()
        self._pruned_at = 0

    def add(
        self, hourly: Mapping[tuple[str, str], Mapping[int, float]], now_ms: int
    ) -> dict[Key, float]:
        """Add increments {(quantity, device): {hour: Wh}}; the new totals of the keys touched.

        Call ``committed()`` with the result once the transaction is committed."""
        cache = self._cache
        missing = {h for hours in hourly.values() for h in hours} - self._loaded_hours
        for hour in missing:  # an hour new to this process: every device's total at once
            cache.update(
                ((q, d, hour), float(wh))
                for q, d, wh in self._db.execute(
                    "SELECT quantity, device, wh FROM totals WHERE hour=?", (hour,)
                )
            )
        self._loaded_hours |= missing
        changed = {
            (quantity, device, hour): cache.get((quantity, device, hour), 0.0) + wh
            for (quantity, device), hours in hourly.items()
            for hour, wh in hours.items()
        }
        self._db.executemany(
            "INSERT OR REPLACE INTO totals VALUES (?, ?, ?, ?, ?)",
            [(*k, v, now_ms) for k, v in changed.items()],
        )
        if now_ms - self._pruned_at > PRUNE_EVERY_S * 1000:
            self._pruned_at = now_ms
            self._db.execute("DELETE FROM totals WHERE touched_ms < ?", (now_ms - KEEP_S * 1000,))
            self.forget()
        return changed

    def committed(self, changed: Mapping[Key, float]) -> None:
        """The transaction that added ``changed`` is committed: keep the totals in memory."""
        self._cache.update(changed)

    def forget(self) -> None:
        """Drop the cache (another process may have changed the table)."""
        self._cache.clear()
        self._loaded_hours.clear()
