"""The InfluxDB time-series store: writes go through the durable spool, reads through InfluxQL.

``write()`` returns once the batch is committed to the spool (so MQTT may acknowledge it); the
sender (gronkoll/stores/influx_sender.py) sends queued entries in order and deletes them once
the server took them; ``close()`` sends what it can before it returns, and whatever is left is
sent by the next process that opens the spool. Reads are answered by InfluxQL on the server
(gronkoll/stores/influxql.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from gronkoll.energy import Batch
from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.settings import InfluxdbStore, Settings
from gronkoll.stores.base import Attribution, WriteResult
from gronkoll.stores.influx_sender import Sender
from gronkoll.stores.influx_write import Writer, open_writer
from gronkoll.stores.influxql import InfluxReader
from gronkoll.stores.lineprotocol import Encoded, LineEncoder
from gronkoll.stores.spool import Spool

log = logging.getLogger(__name__)


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
        self._encoder = LineEncoder(self.spool.series.name, sites)
        self.writer = writer or open_writer(config)
        self._reader: InfluxReader | None = None
        self.sender = Sender(
            self.spool,
            self.writer,
            batch_size=config.batch_size,
            retry_max_s=config.retry_max_s,
            clock=clock,
            host=host or socket.gethostname(),
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def probe(self) -> None:
        """Ask the server to take an empty write: raises what a real write would."""
        self.writer.send(b"")

    def start(self) -> None:
        """Start sending (what an earlier process left in the spool, too)."""
        self.sender.start()

    def close(self) -> None:
        """Send what the server takes now, then stop; the rest stays spooled for next time."""
        self.sender.stop()
        self.writer.close()
        if self._reader is not None:
            self._reader.close()
        self.spool.close()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or the timeout passes (False)."""
        return self.sender.flush(timeout_s)

    # -- writing -----------------------------------------------------------------------------
    def series_id(self, device: str, field: str) -> int:
        """The spool's stable number for a (device, field) series."""
        return self.spool.series.series_id(device, field)

    def write(self, batch: Batch, attribution: Mapping[str, Attribution]) -> WriteResult:
        """Queue the batch durably (lines and hour totals in one transaction) and return."""
        if not batch.rows and not batch.events and not batch.hourly:
            return WriteResult(0, 0, 0)
        self.spool.append(
            batch.hourly,
            batch.latest,
            lambda totals: self._encoder.encode(batch, attribution, totals),
        )
        self.sender.wake()
        return WriteResult(len(batch.rows), batch.intervals, len(batch.events))

    def write_lines(self, lines: Sequence[str]) -> None:
        """Queue lines already in line protocol (precision ms), e.g. the collector's
        ``gronkoll_device`` status points, through the spool like a batch."""
        if lines:
            body = "\n".join(lines).encode()
            self.spool.append({}, {}, lambda _totals: Encoded(body, len(lines), 0))
            self.sender.wake()

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
                timeout_s=c.query_timeout_s,
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
        local = self.spool.series.latest(field)
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
        return self.spool.series.last_times()

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
