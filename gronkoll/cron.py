"""Cron expressions in local time: parsing them as crontab does, and firing once per wall time.

Two things differ from APScheduler 3's own ``CronTrigger.from_crontab``:

* Weekday numbers mean what they mean in crontab(5): 0 and 7 are Sunday, 1 is Monday.
  APScheduler 3 counts 0 as Monday (its documented "historical mistake", fixed in 4.x), so
  ``1-5`` would silently shift every policy by a day. Numbers are turned into names here.
* A wall time that happens twice (the autumn night, e.g. 02:30 on 2026-10-25 in
  Europe/Stockholm) fires once, at its first occurrence (CEST, 00:30 UTC). APScheduler 3
  would fire it twice. A wall time that does not exist (02:30 on 2027-03-28) fires once, at
  the instant it would have been had the clocks not yet changed (02:30 CET = 01:30 UTC,
  03:30 CEST), which is what APScheduler and PEP 495 give. The rule for both nights: the time
  on the clock as it stood before the change.

Giving both a day of month and a weekday is refused: crontab fires when either matches,
APScheduler when both do; neither reading is what everyone expects.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering, 0 = Sunday
_TERM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


class LocalCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger that fires once per local wall time, also on the autumn DST night."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The next fire time after previous_fire_time (or from now), skipping repeats."""
        while True:
            nxt: datetime | None = super().get_next_fire_time(previous_fire_time, now)
            if nxt is None or not _second_occurrence(nxt):
                return nxt
            previous_fire_time = now = nxt


def _second_occurrence(t: datetime) -> bool:
    """True when t is the repeat of a wall time that happens twice (fold 1 of a DST fold)."""
    return t.fold == 1 and t.replace(fold=0).utcoffset() != t.utcoffset()


def _weekday(token: str) -> int:
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(f"weekday {number} is out of range 0-7 (0 and 7 are Sunday)")
        return number % 7
    if token[:3] in WEEKDAYS and len(token) == 3:
        return WEEKDAYS.index(token)
    raise ValueError(f"unknown weekday {token!r} (expected 0-7 or sun, mon, ... sat)")


def _weekdays(field: str) -> str:
    """A crontab weekday field as the names APScheduler reads the same way."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for term in field.lower().split(","):
        match = _TERM.match(term)
        if match is None:
            raise ValueError(f"cannot read the weekday field {field!r}")
        span, step = match["range"], int(match["step"] or 1)
        if step < 1:
            raise ValueError(f"step 0 in the weekday field {field!r}")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-")
            first, last = _weekday(a), _weekday(b)
            if b == "7" or (b == "sun" and first > 0):
                last = 7  # mon-sun, 1-7: up to and including Sunday
            if last < first:
                raise ValueError(f"weekday range {span!r} runs backwards")
        else:
            first = last = _weekday(span)
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def parse_cron(expr: str, timezone: tzinfo = UTC) -> LocalCronTrigger:
    """A five-field crontab expression (minute hour day month weekday) as a trigger.

    Raises ValueError saying what is wrong.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron expression {expr!r} has {len(fields)} fields; expected 5: "
            "minute hour day-of-month month weekday, e.g. '30 18 * * mon-thu'"
        )
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise ValueError(
            f"cron expression {expr!r} gives both a day of month and a weekday; give one "
            "(use two policies for both)"
        )
    try:
        return LocalCronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=timezone,
        )
    except ValueError as err:
        raise ValueError(f"cron expression {expr!r}: {err}") from None
