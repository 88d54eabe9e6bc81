"""The time-series store interface every backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from gronkoll.energy import Batch

Dimension = Literal["device", "site", "group", "kind"]
DIMENSIONS: tuple[str, ...] = ("device", "site", "group", "kind")
UNGROUPED = "ungrouped"


@dataclass(frozen=True, slots=True)
class Attribution:
    """The keys a device's energy is rolled up under, taken when it is written.

    ``site`` is None for a device another meter already measures (``metered_by``): its
    energy is in its site's total through that meter, so it is not added again.
    """

    site: str | None
    group: str
    kind: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write stored."""

    readings: int
    intervals: int
    events: int


class TimeSeriesStore(Protocol):
    """Readings, energy intervals and their rollups."""

    def write(self, batch: Batch, attribution: Mapping[str, Attribution]) -> WriteResult:
        """Store a batch atomically: readings, events and rollups of its intervals."""
        ...

    def series_id(self, device: str, field: str) -> int:
        """The store's stable number for a (device, field) series, created on first use."""
        ...

    def energy_by_hour(
        self, quantity: str, dim: str, start_ms: int, end_ms: int
    ) -> Iterable[tuple[int, str, float]]:
        """(hour start ms, key, Wh) for each UTC hour in [start, end) with energy."""
        ...

    def energy_by_day(
        self, quantity: str, dim: str, first: date, end: date
    ) -> Iterable[tuple[date, str, float]]:
        """(local date, key, Wh) for each local day in [first, end) with energy."""
        ...

    def latest(self, field: str) -> dict[str, tuple[int, float]]:
        """The latest (time ms, value) of a field, per device."""
        ...

    def last_times(self) -> dict[tuple[str, str], int]:
        """The newest stored reading time per (device, field)."""
        ...

    def events(
        self, device: str | None = None, limit: int = 100
    ) -> list[tuple[str, int, str, str]]:
        """The newest recorded events (device, time ms, kind, detail)."""
        ...

    def counts(self) -> dict[str, int]:
        """How many readings, intervals and events are stored."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
