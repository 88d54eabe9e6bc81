"""Readings and status rows on their way to the sink, in batches, from one writer thread.

The store and the state database are synchronous (SQLite); writing from the event loop would
hold up every agent's answer while a commit runs. So one thread does all the writing: the
store and state database are used from it alone, in order. A batch goes every ``flush_s``
seconds, or as soon as ``batch_size`` readings wait. A write the store refuses (locked, full)
is kept and sent again, up to RETRY_BATCHES batches; older readings beyond that are dropped,
and the log says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from gronkoll.collector.clock import Clock
from gronkoll.errors import GronkollError
from gronkoll.statedb import StatusUpdate

log = logging.getLogger(__name__)

#: A reading: device id, field, time in ms since the epoch, value in the field's unit.
Reading = tuple[str, str, int, float]

#: Longest time readings wait in memory before they are handed to the store.
FLUSH_S = 5.0
#: Readings kept for another try while the store refuses writes, in batches.
RETRY_BATCHES = 20


class Sink(Protocol):
    """Where readings and status rows go; called from the poller's one writer thread."""

    def write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
        """Store both, or raise GronkollError having stored no readings."""
        ...


class Batches:
    """What the poller has read and not yet stored, and the thread that stores it."""

    def __init__(self, sink: Sink, *, batch_size: int, flush_s: float, clock: Clock) -> None:
        self.sink = sink
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.clock = clock
        self._readings: list[Reading] = []
        self._statuses: dict[str, StatusUpdate] = {}
        self._full = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._store_error: str | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gronkoll-writer")

    @property
    def store_error(self) -> str | None:
        """Why the store refused the last write, while it still does; else None."""
        return self._store_error

    @property
    def unstored(self) -> int:
        """Readings waiting in memory for the store."""
        return len(self._readings)

    def close(self) -> None:
        """Stop the writer thread once its last write is done."""
        self._writer.shutdown(wait=True)

    def add(self, readings: list[Reading], status: StatusUpdate) -> None:
        """Queue one poll's readings and its device's newest status row."""
        self._readings += readings
        self._statuses[status.device_id] = status
        if len(self._readings) >= self.batch_size:
            self._full.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every flush_s, or as soon as a batch is full, until stop is set."""
        while not stop.is_set():
            due = self.clock.monotonic() + self.flush_s
            waits = [
                asyncio.create_task(self.clock.sleep_until(due)),
                asyncio.create_task(stop.wait()),
            ]
            if self._store_error is None:  # while the store refuses, try once per flush_s
                waits.append(asyncio.create_task(self._full.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if not stop.is_set():
                await self.flush()

    async def flush(self) -> None:
        """Hand what was read so far to the sink, in the writer thread, batch by batch."""
        async with self._flush_lock:
            while self._readings or self._statuses:
                size = self.batch_size
                readings, self._readings = self._readings[:size], self._readings[size:]
                statuses, self._statuses = list(self._statuses.values()), {}
                if len(self._readings) < size:
                    self._full.clear()
                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(self._writer, self.sink.write, readings, statuses)
                except GronkollError as err:
                    self._keep_for_retry(readings, statuses, str(err))
                    return
                except Exception:  # a bug in the write path: say so, drop the batch, carry on
                    log.exception("could not store %d readings; they are lost", len(readings))
                    return
                if self._store_error is not None:
                    log.warning("the store takes writes again")
                    self._store_error = None

    def _keep_for_retry(
        self, readings: list[Reading], statuses: list[StatusUpdate], error: str
    ) -> None:
        if self._store_error is None:
            log.warning("cannot store readings, keeping them to try again: %s", error)
        self._store_error = error
        self._readings = readings + self._readings
        for status in statuses:
            self._statuses.setdefault(status.device_id, status)
        limit = RETRY_BATCHES * self.batch_size
        if len(self._readings) > limit:
            dropped = len(self._readings) - limit
            del self._readings[:dropped]
            log.error(
                "the store has refused writes too long: dropped the %d oldest readings", dropped
            )
