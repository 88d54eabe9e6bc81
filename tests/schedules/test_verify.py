"""The verification rules, one machine at a time, from the agent's word and a second signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gronkoll.commands import Reply, new_command
from gronkoll.schedules.agent_watch import AgentState
from gronkoll.schedules.signals import Signal
from gronkoll.schedules.verify import Tracking, step

T0 = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
DEADLINE = timedelta(seconds=300)


def tracking(*, has_agent: bool = True, has_second: bool = False) -> Tracking:
    cmd = new_command("pc-1", "skola1", "shutdown", now=T0, ttl_s=600)
    return Tracking(
        device="pc-1",
        has_agent=has_agent,
        has_second=has_second,
        command=cmd,
        sent_at=T0,
        deadline=T0 + DEADLINE,
    )


def agent(state: str, seconds: float) -> AgentState:
    return AgentState(state, T0 + timedelta(seconds=seconds), False)


def plug(says: str | None, seconds: float = 30) -> Signal:
    at = T0 + timedelta(seconds=seconds) if says else None
    return Signal("plug", "plug-1", says, at, f"plug plug-1 says {says}")  # type: ignore[arg-type]


def reply(track: Tracking, outcome: str) -> Reply:
    assert track.command is not None
    return Reply(command=track.command.id, outcome=outcome, reason=None, t=T0)  # type: ignore[arg-type]


def go(track: Tracking, seconds: float, **evidence: object) -> tuple[str, str | None, str | None]:
    kw = {"agent": None, "replies": [], "signal": None, **evidence}
    s = step(
        track,
        now=T0 + timedelta(seconds=seconds),
        retries=2,
        postpone_s=1800,
        **kw,  # type: ignore[arg-type]
    )
    return s.kind, s.outcome, s.reason


def test_the_agent_saying_off_after_the_command_is_off_at_that_time() -> None:
    t = tracking()
    assert go(t, 5, agent=agent("on", -60)) == ("wait", None, None)  # the state before
    s = step(
        t,
        agent=agent("off", 20),
        replies=[],
        signal=None,
        now=T0 + timedelta(seconds=21),
        retries=2,
        postpone_s=0,
    )
    assert (s.kind, s.outcome, s.off_at) == ("done", "off", T0 + timedelta(seconds=20))
    assert go(tracking(), 40, agent=agent("offline", 30))[:2] == ("done", "off")


def test_a_plug_still_drawing_power_is_a_reported_disagreement() -> None:
    t = tracking(has_second=True)
    assert go(t, 40, agent=agent("off", 20), signal=plug("on"))[0] == "wait"
    assert t.disagreement is not None and "agent says off" in t.disagreement
    assert go(t, 301, agent=agent("off", 20), signal=plug("on")) == (
        "done",
        "non-compliant",
        "did-not-go-off",
    )


def test_a_machine_without_an_agent_is_verified_by_its_plug_alone() -> None:
    t = tracking(has_agent=False, has_second=True)
    assert go(t, 10, signal=plug(None))[0] == "wait"
    assert go(t, 60, signal=plug("off", 50))[:2] == ("done", "off")
    late = tracking(has_agent=False, has_second=True)
    assert go(late, 301, signal=plug("on")) == ("done", "non-compliant", "no-agent")


def test_nothing_to_verify_with_is_no_agent_at_once() -> None:
    assert go(tracking(has_agent=False), 1) == ("done", "non-compliant", "no-agent")


def test_a_user_active_skip_is_non_compliant_with_that_reason() -> None:
    t = tracking()
    assert go(t, 3, replies=[reply(t, "skipped-user-active")]) == (
        "done",
        "non-compliant",
        "user-active",
    )


def test_a_postponement_moves_the_deadline_once_then_counts_as_user_active() -> None:
    t = tracking()
    assert go(t, 3, replies=[reply(t, "accepted"), reply(t, "postponed")])[0] == "wait"
    assert t.deadline == T0 + DEADLINE + timedelta(minutes=30)
    assert go(t, 400, replies=[reply(t, "accepted"), reply(t, "postponed")])[0] == "wait"
    assert t.deadline == T0 + DEADLINE + timedelta(minutes=30)  # once, not per look
    t.attempts = 3  # the retries are used up
    assert go(t, 2200) == ("done", "non-compliant", "user-active")


def test_silence_is_sent_again_then_did_not_go_off() -> None:
    t = tracking()
    assert go(t, 301, agent=agent("on", -60))[0] == "resend"
    t.attempts = 3
    assert go(t, 301, agent=agent("on", -60)) == ("done", "non-compliant", "did-not-go-off")


def test_a_silent_agent_whose_plug_says_off_is_off_by_the_deadline() -> None:
    t = tracking(has_second=True)
    assert go(t, 100, signal=plug("off", 90))[0] == "wait"  # the agent may still report
    s = step(
        t,
        agent=None,
        replies=[],
        signal=plug("off", 90),
        now=T0 + DEADLINE,
        retries=2,
        postpone_s=0,
    )
    assert (s.kind, s.outcome, s.off_at) == ("done", "off", T0 + timedelta(seconds=90))
    assert t.disagreement is not None and "did not report off" in t.disagreement
