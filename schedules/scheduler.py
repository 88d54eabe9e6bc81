"""The APScheduler 3 scheduler of the shutdown policies, its jobs in the state database.

Jobs come from the policies (gronkoll.shutdown_plan.policy_jobs): one per policy shutdown,
and two per maintenance window (wake, and the shutdown after). They live in APScheduler's
SQLAlchemyJobStore in the state database, so a restart (or a standby node taking over) sees
the runs that came due while no scheduler ran. Every job states its failure handling:

* ``misfire_grace_time`` = MISFIRE_GRACE_S (30 min): a shutdown is still useful a little late
  (the scheduler restarted at 18:40 for an 18:30 policy), but one hours late could switch off
  machines people have sat down at again; later than that the run is skipped and audited as
  missed, and the next school day's firing comes as planned.
* ``coalesce=True``: after downtime over several planned runs, run once (the latest), never a
  burst of shutdowns to the same computers.
* ``max_instances=1``: a run waits for every computer to be verified (up to the verify
  deadline per retry); a second run of the same job meanwhile would send the same commands
  twice, so APScheduler skips it, and that is audited too.

The executor (PolicyExecutor) hands each job its planned time (APScheduler 3 does not pass it
to the job function), checks the misfire grace with the injected clock, and reports missed,
failed and skipped runs as APScheduler events, which the listener writes to the audit log.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from gronkoll.settings import Settings
from gronkoll.shutdown_plan import PolicyJob, PolicyTrigger, policy_jobs
from gronkoll.statedb import StateDB

log = logging.getLogger(__name__)

MISFIRE_GRACE_S = 30 * 60
JOB_TABLE = "apscheduler_jobs"
# Runs of different policies may overlap (several schools at 18:30); each blocks while it
# verifies, so give them their own threads.
WORKERS = 8

Runner = Callable[[str, str, datetime], object]  # (policy, action, planned_at_utc)
Clock = Callable[[], datetime]


def fire(
    policy: str, action: str, *, runner: Runner | None = None, planned_at: datetime | None = None
) -> object:
    """What every policy job runs: the runner (the enforcement run) for one planned time.

    PolicyExecutor passes runner and planned_at; the job store keeps only policy and action.
    """
    if runner is None or planned_at is None:
        raise TypeError("policy jobs run through PolicyExecutor, which passes runner and time")
    return runner(policy, action, planned_at)


class PolicyExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs policy jobs in a thread pool, passing the planned time; misfires by the clock."""

    def __init__(self, runner: Runner, clock: Clock, workers: int = WORKERS) -> None:
        super().__init__()
        self.runner = runner
        self.clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "gronkoll-policy")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        future = self._pool.submit(self.run_job, job, run_times)

        def done(f: concurrent.futures.Future[list[JobExecutionEvent]]) -> None:
            error = f.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, f.result())

        future.add_done_callback(done)

    def run_job(self, job: Any, run_times: list[datetime]) -> list[JobExecutionEvent]:
        """Run the job once per run time still within its grace; the events of each."""
        events = []
        alias = job._jobstore_alias
        for run_time in run_times:
            late = self.clock() - run_time
            if job.misfire_grace_time is not None and late > timedelta(
                seconds=job.misfire_grace_time
            ):
                log.warning("%s: planned run at %s missed by %s", job.id, run_time, late)
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, alias, run_time))
                continue
            try:
                result = job.func(*job.args, runner=self.runner, planned_at=run_time)
            except Exception as err:  # noqa: BLE001 (audited as a failed run; the scheduler goes on)
                log.exception("%s: the run planned at %s failed", job.id, run_time)
                events.append(
                    JobExecutionEvent(
                        EVENT_JOB_ERROR, job.id, alias, run_time, exception=err, traceback=None
                    )
                )
            else:
                events.append(
                    JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, alias, run_time, retval=result)
                )
        return events

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs; with wait, let running ones finish."""
        self._pool.shutdown(wait)


def build_scheduler(settings: Settings, runner: Runner, clock: Clock) -> BackgroundScheduler:
    """A scheduler (not started) on the state database's job store, in local time."""
    return BackgroundScheduler(
        timezone=settings.tz,
        jobstores={"default": SQLAlchemyJobStore(url=settings.state_url, tablename=JOB_TABLE)},
        executors={"default": PolicyExecutor(runner, clock)},
    )


def stop_scheduler(scheduler: BackgroundScheduler) -> None:
    """Shut the scheduler down, letting running jobs finish, and close its job store's pool.

    APScheduler disposes the job store's engine before its own thread has ended, and that
    thread may check a connection back in afterwards; dispose again once it has.
    """
    stores = list(scheduler._jobstores.values())
    scheduler.shutdown(wait=True)
    for store in stores:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def _fingerprint(trigger: Any) -> str:
    """What makes two policy triggers the same schedule."""
    if not isinstance(trigger, PolicyTrigger):
        return repr(trigger)
    cal = trigger.calendar
    return repr(
        (
            str(trigger.cron),
            str(trigger.cron.timezone),
            cal.kind,
            sorted(cal.breaks),
            sorted(cal.study_days),
            trigger.offset,
        )
    )


def sync_jobs(scheduler: BackgroundScheduler, settings: Settings) -> list[PolicyJob]:
    """Make the stored jobs those of the configured policies.

    A job whose schedule is unchanged is left as stored, with its next run time, so a run
    that came due while no scheduler ran is still seen (run late, or audited as missed).
    """
    wanted = [job for p in settings.shutdown.policies for job in policy_jobs(settings, p)]
    ids = {job.job_id for job in wanted}
    for stored in scheduler.get_jobs():
        if stored.id not in ids:
            log.info("removing job %s: no longer in the config", stored.id)
            scheduler.remove_job(stored.id)
    for job in wanted:
        stored = scheduler.get_job(job.job_id)
        if stored is not None and _fingerprint(stored.trigger) == _fingerprint(job.trigger):
            continue
        scheduler.add_job(
            fire,
            trigger=job.trigger,
            args=(job.policy, job.action),
            id=job.job_id,
            name=f"{job.policy} {job.action}",
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            coalesce=True,
            max_instances=1,
        )
    return wanted


def audit_events(scheduler: BackgroundScheduler, state: StateDB, clock: Clock) -> None:
    """Write missed, failed and skipped (still running) runs to the audit log."""

    def listener(event: Any) -> None:
        job = scheduler.get_job(event.job_id)
        policy, action = (job.args[0], job.args[1]) if job is not None else (None, None)
        if isinstance(event, JobSubmissionEvent):
            planned = event.scheduled_run_times[-1]
            outcome, what, why = "skipped", "job-skipped", "the previous run is still going"
        else:
            planned = event.scheduled_run_time
            if event.code == EVENT_JOB_MISSED:
                outcome, what = "missed", "job-missed"
                why = f"more than {MISFIRE_GRACE_S // 60} min late (the scheduler was not running)"
            else:
                outcome, what, why = "failed", "job-failed", f"{event.exception}"
        state.audit(
            t=clock(),
            actor="scheduler",
            action=what,
            outcome=outcome,
            policy=policy,
            reason=why,
            detail={
                "job": event.job_id,
                "action": action,
                "planned_at": planned.astimezone(UTC).isoformat(),
            },
        )

    scheduler.add_listener(listener, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
