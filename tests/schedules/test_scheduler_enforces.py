"""The scheduler end to end on a real Mosquitto: a policy job fires in the real scheduler (its
next run moved to now through APScheduler's public modify_job, not by sleeping until 18:30),
the enforcement run sends signed commands, the simulated agents (schedules/fleet_sim.py,
which verify commands with the real decode_command) go off, and the audit log shows it,
with an override exempting one computer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from mqtt_traffic import wait_for
from shutdown_school import KEY, School

from gronkoll.overrides import add_override
from gronkoll.runtime import Runtime
from gronkoll.schedules.fleet_sim import SimAgent, SimulatedFleet
from gronkoll.schedules.scheduler import audit_events, build_scheduler, stop_scheduler, sync_jobs
from gronkoll.schedules.service import enforcement_runner

pytestmark = pytest.mark.integration


def utc_now() -> datetime:
    return datetime.now(UTC)


def test_a_fired_job_shuts_computers_down_and_the_audit_log_shows_it(
    school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(["a", "b", "kept"], verify_deadline_s=30)
    settings = s.settings()
    agents = [SimAgent(device=s.id(n), site="skola1") for n in ("a", "b", "kept")]
    fleet = SimulatedFleet(s.access, agents, {"skola1": KEY.encode()}, clock=utc_now)
    fleet.start()
    fleets.append(fleet)
    with Runtime(settings) as runtime:
        add_override(
            runtime.state,
            settings,
            device=s.id("kept"),
            start=utc_now() - timedelta(minutes=1),
            end=utc_now() + timedelta(hours=1),
            reason="rendering overnight",
            who="Anna",
            actor="cli",
            now=utc_now(),
        )
        runs: list[object] = []
        done = threading.Event()
        enforce = enforcement_runner(settings, utc_now)

        def runner(policy: str, action: str, planned_at: datetime) -> object:
            try:
                runs.append(enforce(policy, action, planned_at))
            finally:
                done.set()
            return runs[-1] if runs else None

        scheduler = build_scheduler(settings, runner, utc_now)
        audit_events(scheduler, runtime.state, utc_now)
        scheduler.start(paused=True)
        try:
            sync_jobs(scheduler, settings)
            scheduler.resume()
            planned = utc_now()
            scheduler.modify_job("skolor-kvall:shutdown", next_run_time=planned)
            wait_for(done.is_set, "the policy run to finish", 60)
        finally:
            stop_scheduler(scheduler)
        log = runtime.state.audit_log()
    assert len(runs) == 1
    assert fleet.agents[s.id("a")].state == "off" and fleet.agents[s.id("b")].state == "off"
    assert fleet.agents[s.id("kept")].state != "off"
    sent = {r.device for r in log if r.action == "shutdown" and r.outcome == "sent"}
    assert sent == {s.id("a"), s.id("b")}
    verdicts = {(r.device, r.outcome, r.reason) for r in log if r.action == "verify"}
    assert {(s.id("a"), "off", None), (s.id("b"), "off", None)} <= verdicts
    exempt = [r for r in log if r.device == s.id("kept") and r.action != "override-add"]
    assert exempt and all(r.outcome == "non-compliant" for r in exempt)
    assert any("rendering overnight" in str(r.detail) + str(r.reason) for r in exempt)
    assert not [r for r in log if r.action.startswith("job-")]  # nothing missed or failed
