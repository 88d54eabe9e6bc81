"""``gronkoll demo --influxdb URL``: the demo's extra steps when its store is InfluxDB 1.x.

The demo creates its database, and once the simulated readings are queued it writes one
status round for the simulated devices (the collector's ``gronkoll_device`` points; the
simulation stands in for the collector) and waits until the spool has sent everything, so
the summary's reports read what the server holds.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

from gronkoll.errors import StoreUnavailable
from gronkoll.runtime import Runtime
from gronkoll.settings import InfluxdbStore, Settings
from gronkoll.statedb import StatusUpdate
from gronkoll.stores.influxdb import InfluxStore
from gronkoll.stores.influxql import InfluxReader, quote_ident

DATABASE = "gronkoll"
FLUSH_TIMEOUT_S = 900.0


def store_section(url: str, database: str | None = None) -> dict[str, Any]:
    """The demo config's store: InfluxDB 1.x at url (v1 API), its spool in the data folder."""
    return {
        "kind": "influxdb",
        "url": url,
        "api": "v1",
        "database": database or DATABASE,
        "spool_path": "gronkoll-data/spool.sqlite",
    }


def create_database(settings: Settings) -> None:
    """Create the configured database (InfluxDB 1.x: a no-op when it exists)."""
    store = settings.store
    if not isinstance(store, InfluxdbStore) or store.database is None:
        return
    reader = InfluxReader(store.url, database=store.database, tz=settings.tz)
    try:
        reader.query(f"CREATE DATABASE {quote_ident(store.database)}")
    finally:
        reader.close()


def status_round(settings: Settings, at_ms: int) -> list[StatusUpdate]:
    """Every simulated device answered its last poll at ``at_ms``."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    return [
        StatusUpdate(
            device_id=d.id,
            last_seen=at,
            last_success=at,
            last_error=None,
            last_error_at=None,
            consecutive_failures=0,
            last_poll_at=at,
            last_duration_s=None,
            profile=None,
            profile_reason=None,
            problems=(),
            last_problem=None,
            last_problem_at=None,
        )
        for d in settings.devices
    ]


def finish(runtime: Runtime, at_ms: int) -> None:
    """Write the devices' status round and wait until the spool has sent everything."""
    points = importlib.import_module("gronkoll.collector.device_points")
    settings, store = runtime.settings, runtime.store
    if not isinstance(store, InfluxStore):
        return
    store.write_lines(points.device_lines(status_round(settings, at_ms), settings.device))
    if not store.flush(FLUSH_TIMEOUT_S):
        raise StoreUnavailable(
            f"InfluxDB at {store.config.url} did not take the demo's readings within "
            f"{FLUSH_TIMEOUT_S:.0f} s; they stay in the spool and are sent on the next run"
        )
