"""Time-series stores, looked up by the name used in the config's ``store.kind``."""

from __future__ import annotations

from collections.abc import Callable

from gronkoll.settings import Settings
from gronkoll.stores.base import TimeSeriesStore


def _open_sqlite(settings: Settings) -> TimeSeriesStore:
    from gronkoll.stores.sqlite import SqliteStore

    return SqliteStore(
        settings.store_path / "timeseries.db",
        settings.tz,
        busy_timeout_s=settings.store.busy_timeout_s,
    )


#: Store kinds by name; a new backend registers here like the built-in one.
STORES: dict[str, Callable[[Settings], TimeSeriesStore]] = {"sqlite": _open_sqlite}


def open_store(settings: Settings) -> TimeSeriesStore:
    """Open the time-series store the settings name."""
    return STORES[settings.store.kind](settings)
