"""The demo's local days: quarter-hour slots across DST changes, Easter, and the school break
the simulation closes schools for (used by gronkoll.simulate and gronkoll.demo).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gronkoll.timeparse import local_midnight_ms

SLOT_MS = 900_000


@dataclass(frozen=True, slots=True)
class Day:
    """One local day: its quarter-hour slots and what is open."""

    day: date
    times: list[int]  # UTC ms of each slot: 92, 96 or 100 of them
    minutes: list[int]  # local wall-clock minute of each slot
    first_slot: list[int]  # local quarter hour (0..96) -> first slot at or after it
    school_open: bool
    office_open: bool
    summer: float  # 0 in mid-January .. 1 in mid-July

    def flags(self, windows: tuple[tuple[int, int], ...]) -> list[bool]:
        """Per slot: whether its local time falls in one of the windows."""
        return [any(a <= m < b for a, b in windows) for m in self.minutes]


def easter(year: int) -> date:
    """Easter Sunday (Gregorian; the anonymous Meeus/Jones/Butcher algorithm)."""
    a, (b, c) = year % 19, divmod(year, 100)
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    month, day = divmod(h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114, 31)
    return date(year, month, day + 1)


def school_break(first: date, end: date) -> tuple[str, date] | None:
    """The one school-break week the demo closes schools for, by name and Monday.

    Höstlov (ISO week 44) when the period holds it, else the first of sportlov (week 7, as
    in Skåne), påsklov (the week of Easter Monday) or jullov (week 52) that it holds.
    """
    found: list[tuple[int, date, str]] = []
    for year in range(first.year, end.year + 1):
        weeks = (
            (0, date.fromisocalendar(year, 44, 1), "höstlov"),
            (1, date.fromisocalendar(year, 7, 1), "sportlov"),
            (1, easter(year) + timedelta(days=1), "påsklov"),
            (1, date.fromisocalendar(year, 52, 1), "jullov"),
        )
        found.extend(w for w in weeks if first <= w[1] + timedelta(days=4) and w[1] < end)
    if not found:
        return None
    _, monday, name = min(found)
    return name, monday


def calendar(first: date, end: date, tz: ZoneInfo, closed: set[date]) -> Iterator[Day]:
    """The local days [first, end), with their slots worked out across DST changes."""
    day, start = first, local_midnight_ms(first, tz)
    while day < end:
        stop = local_midnight_ms(day + timedelta(days=1), tz)
        times = list(range(start, stop, SLOT_MS))
        minutes = []
        for t in times:
            local = datetime.fromtimestamp(t / 1000, tz)
            minutes.append(local.hour * 60 + local.minute)
        first_slot = [len(times)] * 97
        for k in range(len(times) - 1, -1, -1):  # the first of a repeated hour wins
            first_slot[minutes[k] // 15] = k
        for q in range(95, -1, -1):  # a skipped hour points at the next slot
            first_slot[q] = min(first_slot[q], first_slot[q + 1])
        weekday = day.weekday() < 5
        doy = day.timetuple().tm_yday
        yield Day(
            day=day,
            times=times,
            minutes=minutes,
            first_slot=first_slot,
            school_open=weekday and day not in closed,
            office_open=weekday,
            summer=0.5 * (1 - math.cos(2 * math.pi * (doy - 15) / 365.25)),
        )
        day, start = day + timedelta(days=1), stop
