"""What the energy engine works with and hands out: flags, device models, series, batches.

See gronkoll/energy.py for how readings become energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

MS_PER_HOUR = 3_600_000


class Flag(IntEnum):
    """What the engine made of a reading; stored with it."""

    OK = 0  # closes an interval whose energy is counted
    BASELINE = 1  # first reading of a series: nothing before it to measure against
    GAP = 2  # too long since the previous reading: nothing assumed
    LATE = 3  # older than a reading already processed: stored, adds nothing
    RESET = 4  # counter started again from zero: the interval gets the new reading
    WRAP = 5  # counter passed its declared width and wrapped
    HELD = 6  # counter dropped: held until the next reading tells glitch from reset
    REJECTED = 7  # implausible or unusable value: recorded, never summed
    COVERED = 8  # a better energy source (a counter) covers this device: measurement only
    MEASUREMENT = 9  # a field that yields no energy (voltage, load, ...)


# Plain ints for the hot loops (an IntEnum member lookup costs more than a local int).
OK, BASELINE, GAP, LATE, RESET, WRAP, HELD, REJECTED, COVERED, MEASUREMENT = range(10)

#: A stored reading: series id, time (ms since the epoch, UTC), value, interval start (ms) or
#: None, energy of the interval ending here in Wh or None, flag.
Row = tuple[int, int, float, int | None, float | None, int]
#: Something worth recording about a device: device, time ms, kind, detail.
Event = tuple[str, int, str, str]
#: Energy per (quantity, device), per UTC hour index (ms // 3,600,000).
Hourly = dict[tuple[str, str], dict[int, float]]


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """What the engine needs to know about one device."""

    max_power_w: float
    counter_modulus_wh: float | None = None
    state_w: tuple[float | None, ...] = (None, None, None, None)


class Series:
    """Integration state of one (device, field), and what kind of field it is (a ``kind``)."""

    __slots__ = ("sid", "device", "field", "kind", "last_t", "last_v", "held_t", "held_v")

    def __init__(self, sid: int, device: str, fld: str, kind: int) -> None:
        self.sid = sid
        self.device = device
        self.field = fld
        self.kind = kind
        self.last_t: int | None = None
        self.last_v: float = 0.0
        self.held_t: int | None = None
        self.held_v: float = 0.0

    def newest(self) -> int | None:
        """Time of the newest reading processed, held or not."""
        return self.held_t if self.held_t is not None else self.last_t


@dataclass(slots=True)
class Batch:
    """The engine's output for one batch of readings."""

    rows: list[Row] = field(default_factory=list)
    hourly: Hourly = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    intervals: int = 0
    duplicates: int = 0
    #: readings dropped as not newer than their series' newest before the batch (when asked)
    repeats: int = 0
    unknown: list[tuple[str, str, int, float]] = field(default_factory=list)
    #: newest (time, value) per series id, for "latest reading" lookups
    latest: dict[int, tuple[int, float]] = field(default_factory=dict)
    t_min: int | None = None
    t_max: int | None = None

    @property
    def energy_wh(self) -> float:
        """Total energy of the batch, all quantities."""
        return math.fsum(wh for hours in self.hourly.values() for wh in hours.values())

    def add_hour(self, quantity: str, device: str, hour: int, wh: float) -> None:
        """Add energy to one UTC hour (hour index = ms // 3,600,000)."""
        hours = self.hourly.get((quantity, device))
        if hours is None:
            self.hourly[(quantity, device)] = {hour: wh}
        else:
            hours[hour] = hours.get(hour, 0.0) + wh

    def add_energy(self, quantity: str, device: str, t0: int, t1: int, wh: float) -> None:
        """Spread an interval's energy over the UTC hours it spans, in proportion to time."""
        h0 = t0 // MS_PER_HOUR
        if h0 == (t1 - 1) // MS_PER_HOUR:  # within one hour: the usual case
            self.add_hour(quantity, device, h0, wh)
            return
        for hour, part in split_by_hour(t0, t1, wh):
            self.add_hour(quantity, device, hour, part)


def split_by_hour(t0: int, t1: int, wh: float) -> list[tuple[int, float]]:
    """An interval's energy spread over the UTC hours it spans, in proportion to time."""
    h0, h1 = t0 // MS_PER_HOUR, (t1 - 1) // MS_PER_HOUR
    if h0 >= h1:
        return [(h0, wh)]
    span = t1 - t0
    return [
        (h, wh * (min(t1, (h + 1) * MS_PER_HOUR) - max(t0, h * MS_PER_HOUR)) / span)
        for h in range(h0, h1 + 1)
    ]
