"""Sending the spool to InfluxDB: one thread, oldest entries first, retries with backoff.

The sender takes the oldest spooled entries (several per request, up to ``batch_size``
points), posts them through the writer, and deletes them once the server took them. A server
that is down or refuses our credentials keeps the entries where they are: the sender waits
(0.5 s doubling up to ``retry_max_s``) and tries again, logging the condition once and its
end once. Lines the server refuses outright are found by sending the request's entries one
by one, and only those are dropped (and counted). Every ~10 s, and on the way out, the
spool's own gauges go along as a ``gronkoll_spool`` point. One process at a time sends from
a spool file (an advisory lock beside it), so entries never go out of order.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import IO

from gronkoll.errors import StoreError, StoreRejected, StoreUnavailable
from gronkoll.stores.influx_write import Writer
from gronkoll.stores.lineprotocol import spool_line
from gronkoll.stores.spool import Entry, Spool

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
FIRST_RETRY_S = 0.5


class Outcome(Enum):
    """What one round of the sender did."""

    SENT = 1
    EMPTY = 2
    FAILED = 3


class Sender:
    """Sends a spool's entries in order from a background thread."""

    def __init__(
        self,
        spool: Spool,
        writer: Writer,
        *,
        batch_size: int,
        retry_max_s: float,
        clock: Callable[[], float] = time.time,
        host: str,
    ) -> None:
        self._spool = spool
        self._writer = writer
        self._batch_size = batch_size
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._host = host
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[bytes] | None = None
        self._failing: str | None = None
        self._status_due = 0.0

    def start(self) -> None:
        """Start the thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="gronkoll-influxdb-sender", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Something was queued: send it now rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        """Send what the server takes now (and a last spool point), then end the thread."""
        self._status_due = 0.0
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._lock_file is not None:
            if self._spool.entries:
                log.warning(
                    "%d entries stay in the spool %s; they are sent when Gronkoll next runs",
                    self._spool.entries,
                    self._spool.path,
                )
            self._lock_file.close()
            self._lock_file = None

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        while self._spool.entries:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

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
                backoff = min(max(backoff * 2, FIRST_RETRY_S), self._retry_max_s)
                self._stop.wait(backoff)

    def _holds_lock(self) -> bool:
        if self._lock_file is None:
            handle = Path(f"{self._spool.path}.lock").open("ab")
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
        status = self._spool.status()
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
        entries = self._spool.take(self._batch_size)
        status = self._status()
        if not entries and not status:
            return Outcome.EMPTY
        body = b"\n".join([e.body for e in entries if e.body] + ([status] if status else []))
        try:
            self._writer.send(body)
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
                    self._writer.send(entry.body)
                else:
                    raise first
            except StoreRejected as err:
                log.error("dropping a spooled batch of %d readings: %s", entry.readings, err)
                self._spool.rejected([entry], str(err))
                continue
            except StoreError as err:
                self._failed([entry], err)
                return Outcome.FAILED
            self._sent([entry])
        return Outcome.SENT

    def _sent(self, entries: list[Entry]) -> None:
        if entries:
            self._spool.sent(entries)
        if self._failing is not None:
            self._failing = None
            log.warning(
                "%s takes writes again (%d entries left in the spool)",
                self._writer.target,
                self._spool.entries,
            )

    def _failed(self, entries: list[Entry], err: StoreError) -> None:
        self._spool.failed(str(err))
        text = str(err)
        kind = type(err).__name__
        if self._failing != kind:  # once per condition (down, refused, ...), not every retry
            self._failing = kind
            level = logging.WARNING if isinstance(err, StoreUnavailable) else logging.ERROR
            log.log(
                level,
                "%s; readings are kept in the spool %s (%d entries) and sent when it takes them",
                text,
                self._spool.path,
                self._spool.entries,
            )
