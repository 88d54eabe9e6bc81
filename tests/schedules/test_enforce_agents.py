"""A policy fires for real `gronkoll agent` processes on a real Mosquitto.

The agents run the real program; only their shutdown command is a harmless one that records
that it ran (tests/agent_procs.py), since a computer cannot be powered off here. Who is at
the computer comes from a presence file the test writes. The clock is the wall clock: the
agents check each command's issue and expiry times against their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import servers
from agent_procs import AgentProcess, Watcher, stop_and_clear
from mqtt_traffic import wait_for
from shutdown_school import Clock, write_school

from gronkoll.runtime import Runtime
from gronkoll.schedules.context import enforcement
from gronkoll.schedules.enforce import run_policy

pytestmark = pytest.mark.integration


@pytest.fixture
def agents(tmp_path: Path, mosquitto: servers.Mosquitto) -> Iterator[list[AgentProcess]]:
    """Three agents of one school (pc-a, pc-b, busy), stopped at the end if still running."""
    procs = []
    for name in ("a", "b", "busy"):
        folder = tmp_path / f"agent-{name}"
        folder.mkdir()
        procs.append(AgentProcess(device=name, site="skola1", folder=folder, port=mosquitto.port))
    yield procs
    stop_and_clear(procs, mosquitto.port)


def test_real_agents_shut_down_and_a_busy_user_is_reported_user_active(
    tmp_path: Path, mosquitto: servers.Mosquitto, agents: list[AgentProcess], watcher: Watcher
) -> None:
    school = write_school(
        tmp_path, mosquitto, ["a", "b", "busy"], skip_if_active_minutes=15, warn_minutes=0
    )
    for agent in agents:
        agent.device = school.id(agent.device)
        agent.write_config()
        busy = agent.device.endswith("busy")
        agent.user(present=busy, idle_s=60 if busy else None)  # busy: typed a minute ago
        agent.start()
        watcher.wait_state(agent.device, "on" if busy else "idle")
    settings = school.settings()
    clock = Clock(datetime.now(UTC))
    planned = clock()
    with Runtime(settings) as runtime:
        with enforcement(settings, runtime, clock=clock, poll_s=0.05) as ctx:
            run = run_policy(ctx, "skolor-kvall", planned)
        log = runtime.state.audit_log()
    a, b, busy = agents
    results = {r.device: (r.outcome, r.reason) for r in run.results}
    assert results == {
        a.device: ("off", None),
        b.device: ("off", None),
        busy.device: ("non-compliant", "user-active"),
    }
    wait_for(lambda: a.runs() == 1 and b.runs() == 1, "the agents' shutdown commands to run")
    assert busy.runs() == 0
    sent = {(r.device, r.command_id) for r in log if r.action == "shutdown"}
    assert sent == {(c.device, c.id) for c in run.commands} and len(sent) == 3
    for agent, cmd in ((a, c) for c in run.commands if c.device == a.device):
        assert watcher.reply_to(agent.device, cmd.id)[-1]["outcome"] == "done"
    verdicts = {(r.device, r.outcome, r.reason) for r in log if r.action == "verify"}
    assert verdicts == {
        (a.device, "off", None),
        (b.device, "off", None),
        (busy.device, "non-compliant", "user-active"),
    }
