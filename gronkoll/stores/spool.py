"""The durable local spool in front of InfluxDB (DESIGN decision 4), one SQLite file.

Write-ahead: every batch is first committed here as one entry of line protocol, in the same
transaction that adds its energy to the running hour totals, and only then sent; an entry is
deleted once the store took it. So a batch is either wholly queued with its totals or not at
all, entries go out in the order they came, and a process killed at any point leaves nothing
half-counted: the next start sends what is left. The file also keeps the series numbering, the
newest reading per series (to resume the energy engine without the server) and counters.

The spool is bounded. When a new entry would make it larger than the bound, the OLDEST
entries are evicted (never the one being sent) and every reading in them is counted as
dropped and logged: collection never stops, the newest data (what operators look at) is kept,
and an evicted hour of energy heals when a later entry rewrites that hour's cumulative total.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.stores.hour_totals import HourTotals
from gronkoll.stores.lineprotocol import Encoded, TotalsByHour
from gronkoll.stores.spool_series import SpoolSeries
from gronkoll.stores.spool_status import SpoolStatus
from gronkoll.stores.sqlite import immediate_transaction

log = logging.getLogger(__name__)

DROP_LOG_EVERY_S = 60.0
COUNTERS = (
    "queued_entries",
    "queued_readings",
    "sent_entries",
    "sent_readings",
    "dropped_entries",
    "dropped_readings",
    "rejected_entries",
    "rejected_readings",
    "send_failures",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue(
    id INTEGER PRIMARY KEY AUTOINCREMENT, queued_ms INTEGER NOT NULL, points INTEGER NOT NULL,
    readings INTEGER NOT NULL, bytes INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notes(name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued batch."""

    id: int
    body: bytes
    points: int
    readings: int


class Spool:
    """A bounded, ordered, crash-safe queue of line-protocol batches with running hour totals."""

    def __init__(
        self, path: Path, *, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.RLock()  # the encoder may look a series up while queueing
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged batch survives a crash
            with self._transaction():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT OR IGNORE INTO counters VALUES (?, 0)", [(c,) for c in COUNTERS]
                )
                self._totals = HourTotals(self._db)
                self.series = SpoolSeries(self._db, self._lock, self._errors)
            self._entries, self._bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM queue"
            ).fetchone()
        except sqlite3.Error as err:
            raise StoreUnavailable(f"{path}: cannot open the spool: {err}") from None
        except OSError as err:
            raise StoreUnavailable(f"{path}: cannot open the spool: {err.strerror}") from None
        self._changes = self._changes_now()
        self._inflight: set[int] = set()
        self._dropped_logged_at = -DROP_LOG_EVERY_S

    def _transaction(self) -> AbstractContextManager[None]:
        return immediate_transaction(self._db)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    def close(self) -> None:
        """Close the file; whatever is queued stays for the next start."""
        with self._lock:
            self._db.close()

    # -- queueing ----------------------------------------------------------------------------
    def append(
        self,
        hourly: Mapping[tuple[str, str], Mapping[int, float]],
        latest: Mapping[int, tuple[int, float]],
        encode: Callable[[TotalsByHour], Encoded],
    ) -> Encoded:
        """Add a batch's energy to the hour totals and queue its lines, in one transaction."""
        now = self._now_ms()
        with self._lock, self._errors():
            with self._transaction():
                self._catch_up()
                totals = self._totals.add(hourly, now)
                encoded = encode(totals)
                self._db.execute(
                    "INSERT INTO queue(queued_ms, points, readings, bytes, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (now, encoded.points, encoded.readings, len(encoded.body), encoded.body),
                )
                self._count(queued_entries=1, queued_readings=encoded.readings)
                self.series.save_latest(latest)
                evicted = self._evict(len(encoded.body))
            self._totals.committed(totals)  # not before: a rolled-back batch adds nothing
            self._changes += 1 + evicted[0]
            self._entries += 1 - evicted[0]
            self._bytes += len(encoded.body) - evicted[1]
        if evicted[2]:
            self._log_dropped(evicted[2])
        return encoded

    def _evict(self, new_bytes: int) -> tuple[int, int, int]:
        """Delete the oldest entries while the spool is over its bound: (entries, bytes,
        readings) evicted."""
        size = self._bytes + new_bytes
        if size <= self.max_bytes:
            return (0, 0, 0)
        entries = freed = readings = 0
        for eid, nbytes, nreadings in self._db.execute(
            "SELECT id, bytes, readings FROM queue ORDER BY id LIMIT 10000"
        ).fetchall():
            if size - freed <= self.max_bytes:
                break
            if eid in self._inflight:
                continue
            self._db.execute("DELETE FROM queue WHERE id=?", (eid,))
            entries += 1
            freed += nbytes
            readings += nreadings
        self._count(dropped_entries=entries, dropped_readings=readings)
        return (entries, freed, readings)

    def _log_dropped(self, readings: int) -> None:
        now = self._clock()
        if now - self._dropped_logged_at >= DROP_LOG_EVERY_S:
            self._dropped_logged_at = now
            log.error(
                "spool %s is full (%d MB): dropped its oldest entries, %d readings now, "
                "%d in all; the store has not taken data for a long time",
                self.path,
                self.max_bytes // 1_000_000,
                readings,
                self.counters()["dropped_readings"],
            )

    def _changes_now(self) -> int:
        """Entries ever queued, sent, dropped or refused: moves with every change to the queue."""
        (value,) = self._db.execute(
            "SELECT coalesce(sum(value), 0) FROM counters WHERE name IN "
            "('queued_entries', 'sent_entries', 'dropped_entries', 'rejected_entries')"
        ).fetchone()
        return int(value)

    def _catch_up(self) -> None:
        """Another process changed this file since we last did: what we keep in memory
        (totals, size) may be stale, so read it again."""
        now = self._changes_now()
        if now != self._changes:
            self._totals.forget()
            self._entries, self._bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM queue"
            ).fetchone()
            self._changes = now

    def _count(self, **increments: int) -> None:
        self._db.executemany(
            "UPDATE counters SET value = value + ? WHERE name = ?",
            [(v, k) for k, v in increments.items() if v],
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            text = str(err)
            if "locked" in text or "busy" in text or "readonly" in text or "disk" in text:
                raise StoreUnavailable(
                    f"{self.path}: the spool cannot be written ({text})"
                ) from None
            raise StoreError(f"{self.path}: {text}") from None

    # -- sending -----------------------------------------------------------------------------
    def take(self, max_points: int) -> list[Entry]:
        """The oldest entries, at least one, up to max_points points; marked as being sent."""
        out: list[Entry] = []
        with self._lock, self._errors():
            points = 0
            for eid, npoints, nreadings in self._db.execute(
                "SELECT id, points, readings FROM queue ORDER BY id LIMIT 256"
            ).fetchall():
                if out and points + npoints > max_points:
                    break
                (body,) = self._db.execute("SELECT body FROM queue WHERE id=?", (eid,)).fetchone()
                out.append(Entry(int(eid), bytes(body), int(npoints), int(nreadings)))
                points += npoints
            self._inflight = {e.id for e in out}
        return out

    def sent(self, entries: list[Entry]) -> None:
        """Forget entries the store took."""
        self._remove(entries, sent_entries=len(entries), sent_readings=_readings(entries))

    def rejected(self, entries: list[Entry], reason: str) -> None:
        """Forget entries the store refused as malformed (it would refuse them forever)."""
        self._remove(entries, rejected_entries=len(entries), rejected_readings=_readings(entries))
        self.note_error(f"the store refused {len(entries)} entries: {reason}")

    def _remove(self, entries: list[Entry], **counts: int) -> None:
        with self._lock, self._errors(), self._transaction():
            cur = self._db.executemany("DELETE FROM queue WHERE id=?", [(e.id,) for e in entries])
            self._count(**counts)
            self._entries -= cur.rowcount
            self._bytes -= sum(len(e.body) for e in entries)
            self._inflight = set()

    def failed(self, error: str) -> None:
        """Count a failed send; the entries stay queued, in order."""
        with self._lock, self._errors(), self._transaction():
            self._count(send_failures=1)
            self._note(error)
        self._inflight = set()

    def note_error(self, error: str) -> None:
        """Remember the last error, for `gronkoll spool status`."""
        with self._lock, self._errors():
            self._note(error)

    def _note(self, error: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO notes VALUES ('last_error', ?)",
            (f"{self._now_ms()} {error}",),
        )

    # -- status ------------------------------------------------------------------------------
    @property
    def entries(self) -> int:
        """Entries queued."""
        return int(self._entries)

    def counters(self) -> dict[str, int]:
        """Every counter, since the spool file was made."""
        with self._lock, self._errors():
            rows: list[Any] = self._db.execute("SELECT name, value FROM counters").fetchall()
        return {str(n): int(v) for n, v in rows}

    def status(self) -> SpoolStatus:
        """Size, oldest entry, counters and the last error."""
        with self._lock, self._errors():
            (oldest,) = self._db.execute("SELECT min(queued_ms) FROM queue").fetchone()
            note = self._db.execute("SELECT value FROM notes WHERE name='last_error'").fetchone()
            counters = self.counters()
        return SpoolStatus(
            path=self.path,
            entries=int(self._entries),
            size_bytes=int(self._bytes),
            max_bytes=self.max_bytes,
            oldest_ms=None if oldest is None else int(oldest),
            counters=counters,
            last_error=None if note is None else str(note[0]),
        )


def _readings(entries: list[Entry]) -> int:
    return sum(e.readings for e in entries)
