"""Time-series stores, looked up by the name used in the config's ``store.kind``."""

from __future__ import annotations

from collections.abc import Callable

from gronkoll.settings import Settings, SqliteStore
from gronkoll.stores.base import TimeSeriesStore


def _open_sqlite(settings: Settings) -> TimeSeriesStore:
    from gronkoll.stores.sqlite import SqliteStore as SqliteTimeSeries

    busy_timeout_s = settings.store.busy_timeout_s if isinstance(settings.store, SqliteStore) else 5
    return SqliteTimeSeries(
        settings.store_path / "timeseries.db", settings.tz, busy_timeout_s=busy_timeout_s
    )


def _open_influxdb(settings: Settings) -> TimeSeriesStore:
    from gronkoll.stores.influxdb import open_influx_store

    return open_influx_store(settings)


#: Store kinds by name; a new backend registers here like the built-in one.
STORES: dict[str, Callable[[Settings], TimeSeriesStore]] = {
    "sqlite": _open_sqlite,
    "influxdb": _open_influxdb,
}


def open_store(settings: Settings) -> TimeSeriesStore:
    """Open the time-series store the settings name."""
    return STORES[settings.store.kind](settings)
