"""`gronkoll shutdown now`: what was sent to whom, the results, and a dry run that sends nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from shutdown_school import KEY, School

from gronkoll.cli import main
from gronkoll.runtime import Runtime
from gronkoll.schedules.fleet_sim import SimAgent, SimulatedFleet

pytestmark = pytest.mark.integration


def test_shutdown_now_sends_verifies_and_prints(
    capsys: pytest.CaptureFixture[str], school: Callable[..., School], fleets: list[object]
) -> None:
    s = school(["a", "b"])
    agents = [SimAgent(device=s.id(n), site="skola1") for n in ("a", "b")]
    fleet = SimulatedFleet(
        s.access, agents, {"skola1": KEY.encode()}, clock=lambda: datetime.now(UTC)
    )
    fleet.start()
    fleets.append(fleet)

    code = main(["-c", str(s.path), "shutdown", "now", "--device", s.id("a"), "--dry-run"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.startswith(f"would send shutdown to {s.id('a')} (site skola1) on ")
    assert f"gronkoll/cmd/skola1/{s.id('a')}" in out and len(out.splitlines()) == 1
    assert fleet.agents[s.id("a")].taken == []

    code = main(["-c", str(s.path), "shutdown", "now", "--group", "elevdatorer"])
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert code == 0, out
    assert sorted(line.split()[3] for line in lines if line.startswith("sent ")) == [
        s.id("a"),
        s.id("b"),
    ]
    assert f"{s.id('a')}: off at " in out and f"{s.id('b')}: off at " in out
    assert lines[-1].endswith("2 computers, 0 non-compliant (gronkoll audit)")
    with Runtime(s.settings()) as runtime:
        log = runtime.state.audit_log()
    assert KEY not in out and all(KEY not in str(r.as_dict()) for r in log)  # a secret
    audited = {(r.actor, r.action, r.outcome) for r in log}
    assert {("cli", "shutdown", "sent"), ("cli", "verify", "off")} <= audited
    assert ("cli", "reply", "accepted") in audited  # the agent's replies, as they came
    assert {a for _, a, _ in audited} == {"shutdown", "reply", "verify"}


def test_shutdown_now_refuses_what_is_not_a_computer(
    capsys: pytest.CaptureFixture[str], school: Callable[..., School]
) -> None:
    s = school(["a"], plugs=("a",))
    code = main(["-c", str(s.path), "shutdown", "now", "--device", s.id("plug-a")])
    assert code == 1 and "only computers (kind pc)" in capsys.readouterr()[1]
    code = main(["-c", str(s.path), "shutdown", "now", "--group", "larare"])
    assert code == 1 and "no such group" in capsys.readouterr()[1]
