"""The school calendar a policy follows: which local dates it does not fire on, and why.

``se-school``: Swedish public holidays (from the maintained ``holidays`` package, without its
optional "every Sunday" entries) plus the configured breaks (sportlov, påsklov, höstlov, ...)
and study days. ``none``: every date is a school day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import holidays

if TYPE_CHECKING:
    from gronkoll.settings import Policy, ShutdownSettings

CalendarKind = Literal["se-school", "none"]


@lru_cache(maxsize=64)
def swedish_holidays(year: int) -> dict[date, str]:
    """Swedish public holidays of a year, with their Swedish names."""
    found = holidays.country_holidays("SE", years=year, language="sv", include_sundays=False)
    return dict(found.items())


@dataclass(frozen=True, slots=True)
class SchoolCalendar:
    """Days a policy skips; plain data, so a scheduler's job store can keep it."""

    kind: CalendarKind = "none"
    breaks: tuple[tuple[str, date, date], ...] = ()  # (name, first day, last day)
    study_days: frozenset[date] = frozenset()

    def day_off(self, day: date) -> str | None:
        """Why a local date is not a school day (holiday, break, study day), or None."""
        if self.kind == "none":
            return None
        holiday = swedish_holidays(day.year).get(day)
        if holiday is not None:
            return f"helgdag: {holiday}"
        for name, first, last in self.breaks:
            if first <= day <= last:
                return f"lov: {name}"
        if day in self.study_days:
            return "studiedag"
        return None


def policy_calendar(shutdown: ShutdownSettings, policy: Policy) -> SchoolCalendar:
    """The calendar a policy follows, from its calendar key and the shutdown section."""
    if policy.calendar == "none":
        return SchoolCalendar()
    return SchoolCalendar(
        kind=policy.calendar,
        breaks=tuple((b.name, b.from_, b.to) for b in shutdown.breaks),
        study_days=frozenset(shutdown.study_days),
    )
