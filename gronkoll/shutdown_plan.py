"""When a policy acts: its triggers (cron + school calendar + offset) and the planned actions.

The scheduler's jobs and ``gronkoll shutdown preview`` use the same triggers, so the preview
shows what the scheduler will do, DST nights and school holidays included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from apscheduler.triggers.base import BaseTrigger

from gronkoll.cron import LocalCronTrigger, parse_cron
from gronkoll.school_calendar import SchoolCalendar, policy_calendar

if TYPE_CHECKING:
    from gronkoll.settings import Policy, Settings

Action = Literal["shutdown", "wake"]
# A policy whose every firing falls on days off (a cron for 1 May on a holiday calendar)
# never fires; stop looking this far ahead. Nine years: a 29 February can be eight apart.
LOOKAHEAD = timedelta(days=9 * 366)


class PolicyTrigger(BaseTrigger):  # type: ignore[misc]
    """A cron trigger that skips days off in a school calendar, optionally offset in time.

    The offset (a maintenance window's "shut down N minutes after the wake") is added to the
    cron fire time as elapsed time, so a window across a DST change still lasts N minutes;
    the day off is judged by the local date of the cron time (the wake), so a window that
    starts on a school day ends even if that is past midnight. Plain data, so APScheduler's
    SQLAlchemy job store can keep it.
    """

    def __init__(
        self, cron: LocalCronTrigger, calendar: SchoolCalendar, offset: timedelta = timedelta()
    ) -> None:
        self.cron = cron
        self.calendar = calendar
        self.offset = offset

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The next fire time after previous_fire_time (or from now) on a school day."""
        # Arithmetic on aware local times is wall-clock arithmetic in Python: do it in UTC.
        tz = self.cron.timezone
        prev = _shift(previous_fire_time, -self.offset, tz) if previous_fire_time else None
        start = _shift(now, -self.offset, tz)
        while True:
            fire: datetime | None = self.cron.get_next_fire_time(prev, start)
            if fire is None or fire.astimezone(UTC) - now.astimezone(UTC) > LOOKAHEAD:
                return None
            if self.calendar.day_off(fire.date()) is None:
                return _shift(fire, self.offset, tz)
            prev = start = fire

    def __getstate__(self) -> dict[str, Any]:
        return {"cron": self.cron, "calendar": self.calendar, "offset": self.offset}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cron = state["cron"]
        self.calendar = state["calendar"]
        self.offset = state["offset"]

    def __str__(self) -> str:
        extra = f" +{self.offset}" if self.offset else ""
        return f"policy[{self.cron}{extra}, calendar={self.calendar.kind}]"


def _shift(t: datetime, by: timedelta, tz: tzinfo) -> datetime:
    """t moved by elapsed time (not wall-clock time), in tz."""
    return (t.astimezone(UTC) + by).astimezone(tz)


@dataclass(frozen=True, slots=True)
class PolicyJob:
    """One thing a policy does on a schedule: its job id, action and trigger."""

    job_id: str
    policy: str
    action: Action
    trigger: PolicyTrigger


def policy_jobs(settings: Settings, policy: Policy) -> list[PolicyJob]:
    """The scheduled actions of a policy: its shutdown, and each maintenance window's wake
    and the shutdown after it."""
    tz = settings.tz
    calendar = policy_calendar(settings.shutdown, policy)
    jobs = []
    if policy.shutdown is not None:
        trigger = PolicyTrigger(parse_cron(policy.shutdown, tz), calendar)
        jobs.append(PolicyJob(f"{policy.name}:shutdown", policy.name, "shutdown", trigger))
    for window in policy.maintenance:
        wake = parse_cron(window.wake, tz)
        after = timedelta(minutes=window.shutdown_after_minutes)
        jobs.append(
            PolicyJob(
                f"{policy.name}:{window.name}:wake",
                policy.name,
                "wake",
                PolicyTrigger(wake, calendar),
            )
        )
        jobs.append(
            PolicyJob(
                f"{policy.name}:{window.name}:shutdown",
                policy.name,
                "shutdown",
                PolicyTrigger(wake, calendar, after),
            )
        )
    return jobs


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """A planned firing of a policy, at an instant (aware, UTC)."""

    policy: str
    action: Action
    at: datetime

    def as_json(self, tz: tzinfo) -> dict[str, str]:
        """The preview's JSON object: policy, action, local and UTC time (ISO 8601)."""
        return {
            "policy": self.policy,
            "action": self.action,
            "local": self.at.astimezone(tz).isoformat(),
            "utc": self.at.astimezone(UTC).isoformat(),
        }


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every time a trigger fires in [start, end), as APScheduler would run it (UTC)."""
    times: list[datetime] = []
    prev: datetime | None = None
    now = start  # like APScheduler: the first fire time is asked for with now, no previous
    while True:
        fire = trigger.get_next_fire_time(prev, now)
        if fire is None or fire >= end:
            return times
        times.append(fire.astimezone(UTC))
        prev = now = fire


def plan(settings: Settings, policy: Policy, first_day: date, days: int) -> list[PlannedAction]:
    """A policy's planned actions from the start of first_day for `days` local days."""
    tz = settings.tz
    start = datetime.combine(first_day, datetime.min.time(), tz)
    end = datetime.combine(first_day + timedelta(days=days), datetime.min.time(), tz)
    actions = [
        PlannedAction(job.policy, job.action, at)
        for job in policy_jobs(settings, policy)
        for at in fire_times(job.trigger, start, end)
    ]
    order = {"wake": 0, "shutdown": 1}
    return sorted(actions, key=lambda a: (a.at, order[a.action]))


def skipped_days(
    settings: Settings, policy: Policy, first_day: date, days: int
) -> list[tuple[date, str]]:
    """Local dates in the range on which the policy would fire but for its calendar, and why."""
    tz = settings.tz
    start = datetime.combine(first_day, datetime.min.time(), tz)
    end = datetime.combine(first_day + timedelta(days=days), datetime.min.time(), tz)
    calendar = policy_calendar(settings.shutdown, policy)
    found: dict[date, str] = {}
    for job in policy_jobs(settings, policy):
        every_day = PolicyTrigger(job.trigger.cron, SchoolCalendar(), job.trigger.offset)
        for at in fire_times(every_day, start, end):
            day = _shift(at, -job.trigger.offset, tz).date()
            reason = calendar.day_off(day)
            if reason is not None:
                found[day] = reason
    return sorted(found.items())
