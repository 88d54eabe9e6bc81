"""`gronkoll schedule`: wait to be the one active scheduler, then run the policies' jobs.

The loop: try the leader lock (schedules/leader.py) every ``shutdown.leader_poll_s``; once
held, sync the jobs from the config into the job store, start APScheduler, and check the
lock as often; stop cleanly when asked (SIGTERM, SIGINT) or when the lock is lost, letting a
run in progress finish. Each job run opens its own runtime and enforcement context, so runs
of different policies never share a connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sized
from datetime import UTC, datetime
from typing import Any

from gronkoll.schedules.leader import LeaderLock, leader_lock
from gronkoll.schedules.scheduler import (
    Clock,
    Runner,
    audit_events,
    build_scheduler,
    stop_scheduler,
    sync_jobs,
)
from gronkoll.settings import Settings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


def enforcement_runner(settings: Settings, clock: Clock) -> Runner:
    """The job body: one enforcement run (gronkoll.schedules.enforce.run_policy)."""

    def run(policy: str, action: str, planned_at: datetime) -> object:
        from gronkoll.runtime import Runtime
        from gronkoll.schedules.context import enforcement
        from gronkoll.schedules.enforce import run_policy

        with Runtime(settings) as runtime, enforcement(settings, runtime, clock=clock) as ctx:
            summary = run_policy(ctx, policy, planned_at, action=action)  # type: ignore[arg-type]
        return summary.run_id

    return run


def run_scheduler(
    settings: Settings,
    stop: threading.Event,
    *,
    out: Callable[[str], None],
    clock: Clock = utc_now,
    runner: Runner | None = None,
    lock: LeaderLock | None = None,
) -> None:
    """Run the policies' jobs while this node holds the leader lock, until stop is set."""
    from gronkoll.runtime import Runtime

    lock = lock or leader_lock(settings.state_url)
    runner = runner or enforcement_runner(settings, clock)
    poll_s = settings.shutdown.leader_poll_s
    waiting_said = False
    with Runtime(settings) as runtime:
        state = runtime.state  # migrated before APScheduler touches the database
        try:
            while not stop.is_set():
                if not lock.try_acquire():
                    if not waiting_said:
                        out(f"Scheduler standing by: another node holds the {lock.description}")
                        waiting_said = True
                    stop.wait(poll_s)
                    continue
                waiting_said = False
                scheduler = build_scheduler(settings, runner, clock)
                audit_events(scheduler, state, clock)
                scheduler.start(paused=True)
                try:
                    jobs = sync_jobs(scheduler, settings)
                    scheduler.resume()
                    out(_active_line(scheduler, jobs, settings, lock.description))
                    while not stop.wait(poll_s):
                        if not lock.held():
                            out("Scheduler stopped: the scheduler lock was lost")
                            break
                finally:
                    stop_scheduler(scheduler)
        finally:
            lock.release()
    out("Scheduler stopped.")


def _active_line(scheduler: Any, jobs: Sized, settings: Settings, lock: str) -> str:
    policies = len(settings.shutdown.policies)
    upcoming = sorted(
        (j for j in scheduler.get_jobs() if j.next_run_time is not None),
        key=lambda j: j.next_run_time,
    )
    text = f"Scheduler active ({lock}): {len(jobs)} jobs from {policies} policies"
    if upcoming:
        first = upcoming[0]
        text += f"; next: {first.name} at {first.next_run_time.isoformat()}"
    return text
