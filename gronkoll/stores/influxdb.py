"""The InfluxDB time-series store: writes go through the durable spool, reads through InfluxQL.

``write()`` returns once the batch is committed to the spool (so MQTT may acknowledge it); a
sender thread sends queued entries in order, several per request up to ``batch_size`` points,
and deletes them once the server took them. When the server is down the sender backs off
(capped exponential) and the spool holds the data; ``close()`` sends what it can before it
returns, and whatever is left is sent by the next process that opens the spool. One process
at a time sends from a spool file (an advisory lock beside it), so entries never go out of
order. Reads are answered by InfluxQL on the server (gronkoll/stores/influxql.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from enum import Enum
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from gronkoll.energy import Batch
from gronkoll.errors import StoreError, StoreRejected, StoreUnavailable
from gronkoll.settings import InfluxdbStore, Settings
from gronkoll.stores.base import Attribution, WriteResult
from gronkoll.stores.influx_write import Writer, open_writer
from gronkoll.stores.influxql import InfluxReader
from gronkoll.stores.lineprotocol import Encoded, LineEncoder, spool_line
from gronkoll.stores.spool import Entry, Spool

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
FIRST_RETRY_S = 0.5


class Outcome(Enum):
    SENT = 1
    EMPTY = 2
    FAILED = 3


class InfluxStore:
    """TimeSeriesStore on InfluxDB with a local write-ahead spool."""

    def __init__(
        self,
        config: InfluxdbStore,
        *,
        spool_path: Path,
        sites: Mapping[str, str],
        tz: ZoneInfo,
        writer: Writer | None = None,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
    ) -> None:
        self.config = config
        self.tz = tz
        self.spool = Spool(spool_path, max_bytes=int(config.spool_max_mb * 1_000_000), clock=clock)
        self._encoder = LineEncoder(self.spool.series_name, sites)
        self.writer = writer or open_writer(config)
        self._clock = clock
        self._host = host or socket.gethostname()
        self._reader: InfluxReader | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[bytes] | None = None
        self._failing: str | None = None
        self._status_due = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def probe(self) -> None:
        """Ask the server to take an empty write: raises what a real write would."""
        self.writer.send(b"")

    def start(self) -> None:
        """Start the sender thread (it sends what an earlier process left in the spool, too)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="gronkoll-influxdb-sender", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Send what the server takes now, then stop; the rest stays spooled for next time."""
        self._status_due = 0.0  # a last gronkoll_spool point on the way out
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.spool.entries and self._lock_file is not None:
            log.warning(
                "%d entries stay in the spool %s; they are sent when Gronkoll next runs",
                self.spool.entries,
                self.spool.path,
            )
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.writer.close()
        if self._reader is not None:
            self._reader.close()
        self.spool.close()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        while self.spool.entries:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    # -- writing -----------------------------------------------------------------------------
    def series_id(self, device: str, field: str) -> int:
        """The spool's stable number for a (device, field) series."""
        return self.spool.series_id(device, field)

    def write(self, batch: Batch, attribution: Mapping[str, Attribution]) -> WriteResult:
        """Queue the batch durably (lines and hour totals in one transaction) and return."""
        if not batch.rows and not batch.events and not batch.hourly:
            return WriteResult(0, 0, 0)
        self.spool.append(
            batch.hourly,
            batch.latest,
            lambda totals: self._encoder.encode(batch, attribution, totals),
        )
        self._wake.set()
        return WriteResult(len(batch.rows), batch.intervals, len(batch.events))

    def write_lines(self, lines: Sequence[str]) -> None:
        """Queue lines already in line protocol (precision ms), e.g. the collector's
        ``gronkoll_device`` status points, through the spool like a batch."""
        if lines:
            body = "\n".join(lines).encode()
            self.spool.append({}, {}, lambda _totals: Encoded(body, len(lines), 0))
            self._wake.set()

    # -- sending -----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.0
        while True:
            outcome = self._send_once() if self._holds_lock() else Outcome.EMPTY
            if outcome is Outcome.SENT:
                backoff = 0.0
                continue
            if self._stop.is_set():
                return
            if outcome is Outcome.EMPTY:
                backoff = 0.0
                self._wake.wait(STATUS_EVERY_S)
                self._wake.clear()
            else:
                backoff = min(max(backoff * 2, FIRST_RETRY_S), self.config.retry_max_s)
                self._stop.wait(backoff)

    def _holds_lock(self) -> bool:
        if self._lock_file is None:
            handle = Path(f"{self.spool.path}.lock").open("ab")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._lock_file = handle
        return True

    def _status(self) -> bytes:
        now = self._clock()
        if now < self._status_due:
            return b""
        self._status_due = now + STATUS_EVERY_S
        status = self.spool.status()
        age = 0.0 if status.oldest_ms is None else max(0.0, now - status.oldest_ms / 1000)
        return spool_line(
            self._host,
            entries=status.entries,
            size_bytes=status.size_bytes,
            dropped_total=status.counters["dropped_readings"],
            oldest_age_s=age,
            t_ms=round(now * 1000),
        ).encode()

    def _send_once(self) -> Outcome:
        entries = self.spool.take(self.config.batch_size)
        status = self._status()
        if not entries and not status:
            return Outcome.EMPTY
        body = b"\n".join([e.body for e in entries if e.body] + ([status] if status else []))
        try:
            self.writer.send(body)
        except StoreRejected as err:
            return self._send_one_by_one(entries, err)
        except StoreError as err:
            self._failed(entries, err)
            return Outcome.FAILED
        self._sent(entries)
        return Outcome.SENT

    def _send_one_by_one(self, entries: list[Entry], first: StoreRejected) -> Outcome:
        # One bad entry must not hold back the others: find it by sending them singly.
        for entry in entries:
            try:
                if len(entries) > 1:
                    self.writer.send(entry.body)
                else:
                    raise first
            except StoreRejected as err:
                log.error("dropping a spooled batch of %d readings: %s", entry.readings, err)
                self.spool.rejected([entry], str(err))
                continue
            except StoreError as err:
                self._failed([entry], err)
                return Outcome.FAILED
            self._sent([entry])
        return Outcome.SENT

    def _sent(self, entries: list[Entry]) -> None:
        if entries:
            self.spool.sent(entries)
        if self._failing is not None:
            self._failing = None
            log.warning(
                "%s takes writes again (%d entries left in the spool)",
                self.writer.target,
                self.spool.entries,
            )

    def _failed(self, entries: list[Entry], err: StoreError) -> None:
        self.spool.failed(str(err))
        text = str(err)
        kind = type(err).__name__
        if self._failing != kind:  # once per condition (down, refused, ...), not every retry
            self._failing = kind
            level = logging.WARNING if isinstance(err, StoreUnavailable) else logging.ERROR
            log.log(
                level,
                "%s; readings are kept in the spool %s (%d entries) and sent when it takes them",
                text,
                self.spool.path,
                self.spool.entries,
            )

    # -- reading -----------------------------------------------------------------------------
    def _read(self) -> InfluxReader:
        if self._reader is None:
            c = self.config
            self._reader = InfluxReader(
                c.url,
                database=(c.database if c.api == "v1" else c.bucket) or "",
                retention_policy=c.retention_policy,
                username=c.username,
                password=c.password,
                token=c.token if c.api == "v2" else None,
                tz=self.tz,
                timeout_s=c.timeout_s,
            )
        return self._reader

    def energy_by_hour(
        self, quantity: str, dim: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, str, float]]:
        """(hour start ms, key, Wh) per UTC hour in [start, end), from the server."""
        return list(self._read().energy_by_hour(quantity, dim, start_ms, end_ms))

    def energy_by_day(
        self, quantity: str, dim: str, first: date, end: date
    ) -> list[tuple[date, str, float]]:
        """(local date, key, Wh) per local day in [first, end), from the server."""
        return list(self._read().energy_by_day(quantity, dim, first, end))

    def latest(self, field: str) -> dict[str, tuple[int, float]]:
        """The newest (time ms, value) of a field per device: the server's, or what this
        spool queued when that is newer or the server does not answer."""
        local = self.spool.latest(field)
        try:
            remote: dict[str, tuple[int, float]] = self._read().latest(field)
        except StoreUnavailable as err:
            log.warning("%s; using the newest readings this collector queued", err)
            return local
        for device, (t, value) in local.items():
            if device not in remote or remote[device][0] < t:
                remote[device] = (t, value)
        return remote

    def last_times(self) -> dict[tuple[str, str], int]:
        """The newest reading this spool queued per (device, field): what the energy engine
        resumes from, known even while the server is down."""
        return self.spool.last_times()

    def events(
        self, device: str | None = None, limit: int = 100
    ) -> list[tuple[str, int, str, str]]:
        """The newest recorded events, from the server."""
        return list(self._read().events(device, limit))

    def counts(self) -> dict[str, int]:
        """Readings, intervals and events stored on the server."""
        return dict(self._read().counts())


def open_influx_store(settings: Settings) -> InfluxStore:
    """Open the spool, check the server once, and start sending.

    Wrong credentials, an unknown database or bucket, or a server without the configured API
    raise StoreError (one message, naming the URL); an unreachable server is logged once and
    the store runs on its spool until the server answers.
    """
    config = settings.store
    assert isinstance(config, InfluxdbStore)  # noqa: S101 (the registry calls this for influxdb)
    spool_path = settings.spool_path
    assert spool_path is not None  # noqa: S101
    store = InfluxStore(
        config,
        spool_path=spool_path,
        sites={d.id: d.site for d in settings.devices},
        tz=settings.tz,
    )
    try:
        store.probe()
    except StoreUnavailable as err:
        log.warning("%s; readings are spooled in %s until it answers", err, spool_path)
    except StoreError:
        with contextlib.suppress(StoreError):
            store.close()
        raise
    store.start()
    return store


def check_store(config: InfluxdbStore) -> str:
    """Ask the server to take an empty write; a line saying it answers, else StoreError."""
    writer = open_writer(config)
    try:
        writer.send(b"")
    finally:
        writer.close()
    return f"{writer.target} answers and takes writes"
