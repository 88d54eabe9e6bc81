"""The policy scheduler: jobs in the state database's job store (SQLite and PostgreSQL), DST
nights, the planned time handed to each run, missed and failed runs audited."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from mqtt_traffic import wait_for
from test_shutdown_settings import ISSUE_CONFIG

from gronkoll.schedules.scheduler import (
    MISFIRE_GRACE_S,
    PolicyExecutor,
    audit_events,
    build_scheduler,
    stop_scheduler,
    sync_jobs,
)
from gronkoll.settings import Settings, load_settings
from gronkoll.statedb import StateDB

EXTRA_POLICIES = """\
    - name: nattlig
      devices: [pc-9]
      shutdown: "30 2 * * *"
      calendar: none
    - name: nyarsdagen
      sites: [skola2]
      exempt_devices: [pc-9]
      shutdown: "0 12 1 1 *"
      calendar: none
"""


def school_settings(tmp_path: Path, state_url: str) -> Settings:
    text = (
        ISSUE_CONFIG.replace("  breaks:\n", EXTRA_POLICIES + "  breaks:\n").replace(
            '    skola1: "', '    skola2: "0123456789abcdef0123456789abcdef"\n    skola1: "'
        )
        + f"store: {{kind: sqlite, path: data, state_url: '{state_url}'}}\n"
    )
    path = tmp_path / "gronkoll.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


class Recorder:
    """The job body in these tests: records (policy, action, planned time); a stand-in for the
    enforcement run, which tests/schedules/test_enforce.py runs against real agents."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, datetime]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, policy: str, action: str, planned_at: datetime) -> str:
        with self.lock:
            self.calls.append((policy, action, planned_at))
        if self.fail:
            raise RuntimeError("the broker is down")
        return "run-id"


@contextmanager
def paused_scheduler(
    settings: Settings, run: Callable[[str, str, datetime], str], state_db: StateDB
) -> Iterator[BackgroundScheduler]:
    """A started, paused scheduler of the settings' jobs, its events audited; stopped after."""
    scheduler = build_scheduler(settings, run, lambda: datetime.now(UTC))
    audit_events(scheduler, state_db, lambda: datetime.now(UTC))
    scheduler.start(paused=True)
    try:
        sync_jobs(scheduler, settings)
        yield scheduler
    finally:
        stop_scheduler(scheduler)


@pytest.fixture
def scheduled(
    tmp_path: Path, state_db: StateDB
) -> Iterator[tuple[BackgroundScheduler, Recorder, Settings]]:
    settings = school_settings(tmp_path, state_db.url)
    recorder = Recorder()
    with paused_scheduler(settings, recorder, state_db) as scheduler:
        yield scheduler, recorder, settings


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(scheduler: BackgroundScheduler, job_id: str, start: datetime, end: datetime) -> list:
    """The stored job's fire times in [start, end), read back from the job store."""
    trigger = scheduler.get_job(job_id).trigger  # unpickled from the database
    times, prev, now = [], None, start
    while (t := trigger.get_next_fire_time(prev, now)) is not None and t < end:
        times.append(t.astimezone(UTC))
        prev = now = t
    return times


def test_every_job_states_its_failure_handling(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings],
) -> None:
    scheduler, _, _ = scheduled
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {
        "skolor-kvall:shutdown",
        "skolor-fredag:shutdown",
        "nattlig:shutdown",
        "nyarsdagen:shutdown",
    }
    for job in jobs.values():
        assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (
            MISFIRE_GRACE_S,
            True,
            1,
        )


@pytest.mark.integration
def test_dst_nights_fire_exactly_once_at_the_right_utc_instant(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings],
) -> None:
    scheduler, _, _ = scheduled
    # spring: 02:30 does not exist on 2027-03-28; once, at 02:30 CET = 01:30 UTC
    spring = fires(scheduler, "nattlig:shutdown", utc(2027, 3, 27, 22), utc(2027, 3, 28, 22))
    assert spring == [utc(2027, 3, 28, 1, 30)]
    # autumn: 02:30 happens twice on 2026-10-25; once, at the first (CEST) = 00:30 UTC
    autumn = fires(scheduler, "nattlig:shutdown", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert autumn == [utc(2026, 10, 25, 0, 30)]
    # and an evening policy keeps its local time on both sides of the change
    evenings = fires(scheduler, "skolor-kvall:shutdown", utc(2026, 10, 21), utc(2026, 10, 28))
    assert [t.astimezone(scheduler.timezone).strftime("%a %H:%M") for t in evenings] == [
        "Wed 18:30",
        "Thu 18:30",
        "Mon 18:30",
        "Tue 18:30",
    ]
    assert [t.hour for t in evenings] == [16, 16, 17, 17]  # CEST, then CET


@pytest.mark.integration
def test_a_holiday_is_skipped_by_the_stored_job(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings],
) -> None:
    scheduler, _, _ = scheduled
    week = fires(scheduler, "skolor-kvall:shutdown", utc(2027, 1, 4), utc(2027, 1, 8))
    # Wednesday 2027-01-06 is Trettondedag jul
    assert [t.day for t in week] == [4, 5, 7]


def test_the_executor_hands_the_planned_time_and_skips_a_run_past_its_grace(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings],
) -> None:
    scheduler, _, _ = scheduled
    job = scheduler.get_job("nattlig:shutdown")
    planned = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    now = [planned + timedelta(seconds=3)]  # a controllable clock
    recorder = Recorder()
    executor = PolicyExecutor(recorder, lambda: now[0], workers=1)
    events = executor.run_job(job, [planned])
    assert recorder.calls == [("nattlig", "shutdown", planned)]
    assert [e.code for e in events] == [4096]  # EVENT_JOB_EXECUTED
    now[0] = planned + timedelta(seconds=MISFIRE_GRACE_S + 1)
    events = executor.run_job(job, [planned])
    assert len(recorder.calls) == 1  # not run again
    assert [e.code for e in events] == [16384]  # EVENT_JOB_MISSED
    executor.shutdown()


@pytest.mark.integration
def test_a_job_fires_once_with_its_planned_time(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings],
) -> None:
    scheduler, recorder, _ = scheduled
    scheduler.resume()
    soon = datetime.now(UTC) + timedelta(milliseconds=300)
    scheduler.modify_job("nattlig:shutdown", next_run_time=soon)
    wait_for(lambda: recorder.calls, "the job to fire", 20)
    assert recorder.calls == [("nattlig", "shutdown", soon)]
    following = scheduler.get_job("nattlig:shutdown").next_run_time
    assert (
        following > soon and following.astimezone(scheduler.timezone).strftime("%H:%M") == "02:30"
    )


@pytest.mark.integration
def test_runs_missed_while_down_are_coalesced_and_audited_once(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings], state_db: StateDB
) -> None:
    scheduler, recorder, _ = scheduled
    # The scheduler was down for three New Year's Days: one "missed" line, no shutdown.
    three_years_ago = datetime(datetime.now(UTC).year - 3, 1, 1, 11, tzinfo=UTC)
    scheduler.modify_job("nyarsdagen:shutdown", next_run_time=three_years_ago)
    scheduler.resume()
    wait_for(lambda: state_db.audit_log(), "the missed run's audit line", 20)
    wait_for(
        lambda: scheduler.get_job("nyarsdagen:shutdown").next_run_time > datetime.now(UTC),
        "the job to move on",
        20,
    )
    (line,) = state_db.audit_log()
    assert (line.action, line.outcome, line.policy, line.actor) == (
        "job-missed",
        "missed",
        "nyarsdagen",
        "scheduler",
    )
    assert line.detail is not None and line.detail["planned_at"].endswith("T11:00:00+00:00")
    assert recorder.calls == []


@pytest.mark.integration
def test_a_failed_run_is_audited_and_the_scheduler_goes_on(
    tmp_path: Path, state_db: StateDB
) -> None:
    settings = school_settings(tmp_path, state_db.url)
    with paused_scheduler(settings, Recorder(fail=True), state_db) as scheduler:
        scheduler.resume()
        scheduler.modify_job("nattlig:shutdown", next_run_time=datetime.now(UTC))
        wait_for(lambda: state_db.audit_log(), "the failed run's audit line", 20)
        (line,) = state_db.audit_log()
        assert (line.action, line.outcome, line.policy) == ("job-failed", "failed", "nattlig")
        assert line.reason == "the broker is down"
        assert scheduler.get_job("nattlig:shutdown").next_run_time > datetime.now(UTC)


def test_an_unchanged_job_keeps_its_stored_next_run_and_a_changed_one_is_replaced(
    scheduled: tuple[BackgroundScheduler, Recorder, Settings], tmp_path: Path
) -> None:
    scheduler, _, settings = scheduled
    past = datetime(2026, 1, 1, 11, tzinfo=UTC)
    scheduler.modify_job("nyarsdagen:shutdown", next_run_time=past)
    sync_jobs(scheduler, settings)  # a restart with the same config
    assert scheduler.get_job("nyarsdagen:shutdown").next_run_time == past
    changed = settings.source.read_text().replace('"30 2 * * *"', '"45 2 * * *"')
    settings.source.write_text(changed.replace("  - name: nyarsdagen\n", "  - name: nyar\n"))
    sync_jobs(scheduler, load_settings(settings.source))
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert "nyarsdagen:shutdown" not in jobs  # gone from the config, gone from the store
    assert jobs["nattlig:shutdown"].next_run_time.minute == 45


@pytest.mark.integration
@pytest.mark.parametrize("state_db", ["sqlite"], indirect=True)
def test_a_firing_while_the_previous_run_still_verifies_is_skipped_and_audited(
    tmp_path: Path, state_db: StateDB
) -> None:
    settings = school_settings(tmp_path, state_db.url)
    release = threading.Event()
    started: list[datetime] = []

    def slow_run(policy: str, action: str, planned_at: datetime) -> str:
        started.append(planned_at)
        release.wait(30)  # a run waiting for its computers' verdicts
        return "run-id"

    with paused_scheduler(settings, slow_run, state_db) as scheduler:
        try:
            scheduler.resume()
            scheduler.modify_job("nattlig:shutdown", next_run_time=datetime.now(UTC))
            wait_for(lambda: started, "the first run to start", 20)
            scheduler.modify_job("nattlig:shutdown", next_run_time=datetime.now(UTC))
            wait_for(lambda: state_db.audit_log(), "the skipped run's audit line", 20)
            (line,) = state_db.audit_log()
            assert (line.action, line.outcome, line.policy) == (
                "job-skipped",
                "skipped",
                "nattlig",
            )
            assert len(started) == 1  # never two runs of one job at once
        finally:
            release.set()  # before the scheduler stops: it waits for the running job
