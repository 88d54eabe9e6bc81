"""A policy fires on a real Mosquitto: signed commands go out, agents answer, each computer is
verified (agent state, reply, the plug's power) and every command and outcome is audited.

The agents here are simulated (schedules/fleet_sim.py): each verifies commands with the real
decode_command and answers like `gronkoll agent` without switching anything off. The plug
readings are ingested into the real store by the test, as the collector would from the plug.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from shutdown_school import KEY, PLANNED, Clock, School

from gronkoll.commands import Command
from gronkoll.runtime import Runtime
from gronkoll.schedules.context import enforcement
from gronkoll.schedules.enforce import run_policy
from gronkoll.schedules.fleet_sim import SimAgent, SimulatedFleet

pytestmark = pytest.mark.integration


def start_fleet(
    school: School, fleets: list[object], clock: Clock, **behaviours: str
) -> SimulatedFleet:
    agents = [
        SimAgent(device=school.id(name), site="skola1", behaviour=b)  # type: ignore[arg-type]
        for name, b in behaviours.items()
    ]
    fleet = SimulatedFleet(school.access, agents, {"skola1": KEY.encode()}, clock=clock)
    fleet.start()
    fleets.append(fleet)
    return fleet


def plug_reads(runtime: Runtime, clock: Clock, plug: str, watts: float):  # noqa: ANN201
    """When commands go out, the plug reports `watts` (as the collector would store it)."""

    def on_sent(_cmds: Sequence[Command]) -> None:
        t_ms = round(clock().timestamp() * 1000) + 1000
        runtime.ingestor.ingest([(plug, "power_w", t_ms, watts)])

    return on_sent


def outcomes(run: object) -> dict[str, tuple[str, str | None]]:
    return {r.device: (r.outcome, r.reason) for r in run.results}  # type: ignore[attr-defined]


def test_a_policy_firing_shuts_down_verifies_and_audits(
    school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(
        ["ok1", "ok2", "busy", "plugged", "bare", "teacher"],
        plugs=("plugged",),
        exempt=("teacher",),
    )
    settings = s.settings()
    clock = Clock(PLANNED)
    fleet = start_fleet(s, fleets, clock, ok1="comply", ok2="comply", busy="user-active")
    with Runtime(settings) as runtime:
        before = round((PLANNED - timedelta(minutes=10)).timestamp() * 1000)
        runtime.ingestor.ingest([(s.id("plug-plugged"), "power_w", before, 34.0)])
        with enforcement(settings, runtime, clock=clock, poll_s=0.05) as ctx:
            ctx.on_sent = plug_reads(runtime, clock, s.id("plug-plugged"), 0.4)
            run = run_policy(ctx, "skolor-kvall", PLANNED, action="shutdown")
        log = runtime.state.audit_log()
    assert outcomes(run) == {
        s.id("teacher"): ("non-compliant", "exempt"),
        s.id("ok1"): ("off", None),
        s.id("ok2"): ("off", None),
        s.id("busy"): ("non-compliant", "user-active"),
        s.id("plugged"): ("off", None),
        s.id("bare"): ("non-compliant", "no-agent"),
    }
    assert fleet.agents[s.id("ok1")].state == "off" and fleet.agents[s.id("ok1")].rejected == []
    by_device = {r.device: r for r in run.results}
    ok1 = by_device[s.id("ok1")]
    assert ok1.off_at is not None and PLANNED <= ok1.off_at < PLANNED + timedelta(minutes=1)
    assert ok1.until_at is not None and ok1.until_at.isoformat() == "2026-11-25T06:00:00+00:00"
    assert "plug" in by_device[s.id("plugged")].evidence["second_signal"]
    sent = {r.device for r in log if r.action == "shutdown" and r.outcome == "sent"}
    assert sent == {s.id(n) for n in ("ok1", "ok2", "busy", "plugged", "bare")}
    assert {r.command_id for r in log if r.action == "shutdown"} == {c.id for c in run.commands}
    verdicts = {(r.device, r.outcome, r.reason) for r in log if r.action == "verify"}
    assert (s.id("busy"), "non-compliant", "user-active") in verdicts
    assert (s.id("ok2"), "off", None) in verdicts
    assert all(r.policy == "skolor-kvall" and r.actor == "scheduler" for r in log)


def test_silence_is_retried_then_reported_as_did_not_go_off(
    school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(["mute"], verify_deadline_s=60, retries=2)
    settings = s.settings()
    clock = Clock(PLANNED, speed=2000)  # the deadlines (60 s + the 10 min warning) pass fast
    fleet = start_fleet(s, fleets, clock, mute="silent")
    with (
        Runtime(settings) as runtime,
        enforcement(settings, runtime, clock=clock, poll_s=0.02) as ctx,
    ):
        run = run_policy(ctx, "skolor-kvall", PLANNED)
        log = runtime.state.audit_log(device=s.id("mute"))
    assert outcomes(run) == {s.id("mute"): ("non-compliant", "did-not-go-off")}
    assert len(run.commands) == 3 and len(set(fleet.agents[s.id("mute")].taken)) == 3
    assert [r.action for r in log] == ["shutdown", "shutdown", "shutdown", "verify"]
    assert run.results[0].evidence["attempts"] == 3


def test_an_agent_that_says_off_while_its_plug_draws_power_is_a_disagreement(
    school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(["liar"], plugs=("liar",), verify_deadline_s=60, retries=0)
    settings = s.settings()
    clock = Clock(PLANNED, speed=2000)
    start_fleet(s, fleets, clock, liar="comply")
    with Runtime(settings) as runtime:
        with enforcement(settings, runtime, clock=clock, poll_s=0.02) as ctx:
            ctx.on_sent = plug_reads(runtime, clock, s.id("plug-liar"), 31.0)
            run = run_policy(ctx, "skolor-kvall", PLANNED)
        log = runtime.state.audit_log(device=s.id("liar"))
    assert outcomes(run) == {s.id("liar"): ("non-compliant", "did-not-go-off")}
    (disagreement,) = [r for r in log if r.outcome == "disagreement"]
    assert disagreement.reason is not None
    assert "the agent says off" in disagreement.reason and "31 W" in disagreement.reason


def test_audit_only_sends_nothing_and_records_who_was_on(
    school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(["awake", "dark"], plugs=("dark",), audit_only=True)
    settings = s.settings()
    clock = Clock(PLANNED)
    fleet = start_fleet(s, fleets, clock, awake="comply")
    with Runtime(settings) as runtime:
        t_ms = round((PLANNED - timedelta(minutes=2)).timestamp() * 1000)
        runtime.ingestor.ingest([(s.id("plug-dark"), "power_w", t_ms, 0.3)])
        with enforcement(settings, runtime, clock=clock, poll_s=0.05) as ctx:
            run = run_policy(ctx, "skolor-kvall", PLANNED)
        log = runtime.state.audit_log()
    assert run.commands == [] and fleet.agents[s.id("awake")].taken == []
    assert outcomes(run) == {s.id("awake"): ("on", None), s.id("dark"): ("off", None)}
    assert {(r.action, r.device, r.outcome) for r in log} == {
        ("observe", s.id("awake"), "on"),
        ("observe", s.id("dark"), "off"),
    }
    assert all(r.audit_only for r in run.results)
