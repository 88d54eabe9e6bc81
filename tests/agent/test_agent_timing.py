"""The agent's timing with a controlled clock: warning time, one postpone, skip at the deadline.

The agent runs in this process (its loop in a thread) so that the test owns its clock; the
broker, the signed commands and the commands it runs are real. The shutdown command records
that it ran instead of powering anything off (tests/agent_procs.py), which cannot run here.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servers
from agent_procs import KEY, AgentProcess, Watcher, clear_retained
from mqtt_traffic import wait_for

from gronkoll.agent.config import load_agent_settings
from gronkoll.agent.runner import Agent
from gronkoll.commands import Command, command_topic, encode_command, new_command, state_topic

pytestmark = pytest.mark.integration

START = datetime(2027, 2, 1, 17, 25, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta)


@dataclass
class Running:
    agent: Agent
    files: AgentProcess  # its folder, presence file, records
    clock: Clock
    watcher: Watcher

    def send(self, action: str = "shutdown", **kw: Any) -> Command:
        cmd = new_command(
            self.files.device, self.files.site, action, now=self.clock(), ttl_s=3600, **kw
        )  # type: ignore[arg-type]
        topic = command_topic(self.files.site, self.files.device)
        self.watcher.publish(topic, encode_command(cmd, KEY.encode()))
        return cmd


@pytest.fixture
def start(
    tmp_path: Path, mosquitto: servers.Mosquitto, watcher: Watcher
) -> Iterator[Callable[..., Running]]:
    """Starts an agent in this process with config changes; stops it at the end."""
    stops: list[Callable[[], None]] = []
    devices: list[str] = []  # their state topics

    def start(**config: Any) -> Running:
        files = AgentProcess(
            device="pc-" + uuid.uuid4().hex[:8], site="skola1", folder=tmp_path, port=mosquitto.port
        )
        files.write_config(state_interval_s=3600, **config)
        files.user(present=True, idle_s=1200)
        clock = Clock(START)
        agent = Agent(load_agent_settings(files.config), clock=clock)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        stops.append(lambda: (agent.stop(), thread.join(30)))
        devices.append(state_topic(files.device))
        watcher.wait_state(files.device, "idle")
        return Running(agent, files, clock, watcher)

    yield start
    for stop in stops:
        stop()
    # Later tests' collectors subscribe to gronkoll/agent/+/state: leave nothing retained.
    clear_retained(mosquitto.port, devices)


@pytest.fixture
def running(start: Callable[..., Running]) -> Running:
    return start()


def test_a_warned_user_gets_the_warning_time_then_the_computer_goes_off(
    running: Running,
) -> None:
    cmd = running.send(warn_minutes=10)
    running.watcher.wait_reply(running.files.device, cmd.id, "accepted")
    wait_for(running.files.warned.exists, "the warning")
    running.clock.advance(minutes=9, seconds=59)
    running.send("wake-report")  # a round trip through the loop, after the clock moved
    wait_for(lambda: len(running.watcher.replies(running.files.device)) == 2, "the wake report")
    assert running.files.runs() == 0
    running.clock.advance(seconds=1)
    running.watcher.wait_reply(running.files.device, cmd.id, "done")
    running.watcher.wait_state(running.files.device, "off")
    wait_for(lambda: running.files.runs() == 1, "the shutdown command")
    retry = running.send()  # the scheduler's retry crossed our "off": not run twice
    reply = running.watcher.wait_reply(running.files.device, retry.id, "done")
    assert reply["reason"] == "already shutting down since 2027-02-01T17:35:00Z"
    assert running.files.runs() == 1
    # Still running ten minutes later, the computer evidently did not go off: it says so.
    running.clock.advance(minutes=10)
    topic = command_topic(running.files.site, running.files.device)
    running.watcher.publish(topic, b"not a command")  # wakes the loop, which reads the clock
    running.watcher.wait_state(running.files.device, "idle")


def test_a_postpone_moves_the_shutdown_once(running: Running) -> None:
    cmd = running.send(warn_minutes=10, postpone_minutes=30)
    running.watcher.wait_reply(running.files.device, cmd.id, "accepted")
    running.clock.advance(minutes=5)
    running.files.postpone.touch()
    reply = running.watcher.wait_reply(running.files.device, cmd.id, "postponed")
    assert reply["reason"] == "the user postponed it by 30 min, to 2027-02-01T18:05:00Z"
    running.clock.advance(minutes=30)  # 17:55: past the first deadline, before the new one
    running.send("wake-report")
    wait_for(lambda: len(running.watcher.replies(running.files.device)) == 3, "the wake report")
    assert running.files.runs() == 0
    running.clock.advance(minutes=10)
    running.watcher.wait_reply(running.files.device, cmd.id, "done")
    wait_for(lambda: running.files.runs() == 1, "the shutdown command")


def test_a_user_active_at_the_deadline_is_not_cut_off(running: Running) -> None:
    cmd = running.send(warn_minutes=10, skip_if_active_minutes=15)
    running.watcher.wait_reply(running.files.device, cmd.id, "accepted")
    running.files.user(present=True, idle_s=20)  # the warning brought them back
    running.clock.advance(minutes=10)
    reply = running.watcher.wait_reply(running.files.device, cmd.id, "skipped-user-active")
    assert reply["reason"] == "user active 20 s ago (limit 15 min)"
    assert running.files.runs() == 0


def test_a_second_shutdown_while_one_waits_keeps_the_first(running: Running) -> None:
    first = running.send(warn_minutes=10)
    running.watcher.wait_reply(running.files.device, first.id, "accepted")
    second = running.send(warn_minutes=1)
    reply = running.watcher.wait_reply(running.files.device, second.id, "accepted")
    assert reply["reason"] == f"a shutdown is already pending (command {first.id})"
    running.clock.advance(minutes=10)
    running.watcher.wait_reply(running.files.device, first.id, "done")
    wait_for(lambda: running.files.runs() == 1, "one run of the shutdown command")


def test_a_failing_shutdown_command_is_logged_and_the_state_says_on_again(
    start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    fail = [sys.executable, "-c", "import sys; sys.exit('no permission to power off')"]
    running = start(shutdown_command=fail)
    running.files.user(present=False)
    cmd = running.send(warn_minutes=10)
    running.watcher.wait_reply(running.files.device, cmd.id, "done")
    topic = state_topic(running.files.device)

    def states() -> list[str]:
        return [json.loads(p)["state"] for p in running.watcher.on(topic)]

    wait_for(lambda: states()[-2:] == ["off", "idle"], "off, then idle again: still running")
    assert "exited with 1: no permission to power off" in caplog.text
