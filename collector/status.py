"""What the poller knows about each device: last success and error, failures, profile, problems.

A condition is logged once when it starts and once when it ends (snmp_exporter reports on its
own scrapes; Telegraf's errors name the agent): a device that stops answering logs one warning,
however many polls fail, and one line when it answers again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gronkoll.collector.row_cache import RowCache
from gronkoll.fields import FIELDS, base_field
from gronkoll.statedb import DeviceStatus, StatusUpdate

log = logging.getLogger(__name__)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@dataclass(slots=True)
class DeviceState:
    """One device's poll status, kept in memory and written to the state database."""

    device_id: str
    profile: str | None = None
    profile_reason: str | None = None
    detected: bool = False  # profile chosen for the current run of successful polls
    last_seen: float | None = None  # times are seconds since the epoch
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    last_poll_at: float | None = None
    last_duration_s: float | None = None
    problems: tuple[str, ...] = ()
    last_problem: str | None = None
    last_problem_at: float | None = None
    failing_since: float | None = None  # first failed poll of the current failure, this run
    counters: dict[str, float] = field(default_factory=dict)
    rows: RowCache = field(default_factory=RowCache)  # table rows seen at the last walk

    @classmethod
    def restored(cls, device_id: str, row: DeviceStatus | None) -> DeviceState:
        """The state saved by an earlier run, so counts and times carry on across restarts."""
        if row is None:
            return cls(device_id)
        return cls(
            device_id,
            profile=row.profile,
            profile_reason=row.profile_reason,
            last_seen=_seconds(row.last_seen),
            last_success=_seconds(row.last_success),
            last_error=row.last_error,
            last_error_at=_seconds(row.last_error_at),
            consecutive_failures=row.consecutive_failures or 0,
            last_poll_at=_seconds(row.last_poll_at),
            last_duration_s=row.last_duration_s,
            problems=tuple(row.problem_list),
            last_problem=row.last_problem,
            last_problem_at=_seconds(row.last_problem_at),
        )

    def counter_problems(self, values: list[tuple[str, float]]) -> list[str]:
        """Counters lower than at the last poll: a reset or wrap the energy engine settles."""
        problems = []
        for name, value in values:
            spec = FIELDS.get(base_field(name))
            if spec is None or spec.kind != "counter":
                continue
            before = self.counters.get(name)
            if before is not None and value < before:
                problems.append(
                    f"{name} went backwards from {before:g} to {value:g} {spec.unit} "
                    "(a reset or wrap; see gronkoll events)"
                )
            self.counters[name] = value
        return problems

    def succeeded(self, at: float, duration_s: float, problems: list[str]) -> None:
        """Record a poll that got an answer; log a recovery and problems new since last time."""
        if self.consecutive_failures:
            since = _dt(self.failing_since)
            log.warning(
                "%s: answering again after %d failed polls%s",
                self.device_id,
                self.consecutive_failures,
                f" (failing since {since:%Y-%m-%d %H:%M:%S} UTC)" if since else "",
            )
        self.failing_since = None
        self.consecutive_failures = 0
        self.last_seen = self.last_success = self.last_poll_at = at
        self.last_duration_s = duration_s
        for problem in problems:
            if problem not in self.problems:
                log.warning("%s: %s", self.device_id, problem)
        if self.problems and not problems:
            log.warning("%s: the problems are gone (%s)", self.device_id, "; ".join(self.problems))
        if problems:
            self.last_problem, self.last_problem_at = problems[-1], at
        self.problems = tuple(problems)

    def failed(self, at: float, duration_s: float, error: str) -> None:
        """Record a failed poll; log it when the failure starts or its cause changes."""
        if self.failing_since is None:
            self.failing_since = at
            log.warning("%s", error)
        elif error != self.last_error:
            log.warning("%s (still failing, now for this reason)", error)
        self.detected = False  # what answers next may be another device: detect again
        self.rows.clear()
        self.consecutive_failures += 1
        self.last_error, self.last_error_at = error, at
        self.last_poll_at = at
        self.last_duration_s = duration_s

    def update(self) -> StatusUpdate:
        """The row to write to the state database."""
        return StatusUpdate(
            device_id=self.device_id,
            last_seen=_dt(self.last_seen),
            last_success=_dt(self.last_success),
            last_error=self.last_error,
            last_error_at=_dt(self.last_error_at),
            consecutive_failures=self.consecutive_failures,
            last_poll_at=_dt(self.last_poll_at),
            last_duration_s=self.last_duration_s,
            profile=self.profile,
            profile_reason=self.profile_reason,
            problems=self.problems,
            last_problem=self.last_problem,
            last_problem_at=_dt(self.last_problem_at),
        )
