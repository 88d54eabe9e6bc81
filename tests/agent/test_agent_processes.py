"""Real `gronkoll agent` processes on a real Mosquitto, sent real signed commands.

Powering a computer off cannot run here: each agent's shutdown command is a small program
that records that it ran (tests/agent_procs.py), and its warning command records the
message. Everything else is the real thing: the agent processes, the broker, the signing,
the persistent sessions, the last will.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servers
from agent_procs import KEY, AgentProcess, Watcher, fleet, retained, stop_and_clear
from mqtt_traffic import wait_for

from gronkoll.commands import Command, command_topic, encode_command, new_command, state_topic
from gronkoll.mqtt_client import BrokerAccess
from gronkoll.schedules.publish import CommandPublisher

pytestmark = pytest.mark.integration


@pytest.fixture
def publisher(mosquitto: servers.Mosquitto) -> Iterator[CommandPublisher]:
    access = BrokerAccess(host=mosquitto.host, port=mosquitto.port)
    with CommandPublisher(access, {"skola1": KEY.encode()}) as pub:
        yield pub


@pytest.fixture
def agents(tmp_path: Path, mosquitto: servers.Mosquitto) -> Iterator[list[AgentProcess]]:
    """Three agents, not started; stopped at the end if still running."""
    procs = list(fleet(tmp_path, mosquitto.port, 3))
    yield procs
    stop_and_clear(procs, mosquitto.port)


def started(agent: AgentProcess, watcher: Watcher, state: str = "idle") -> AgentProcess:
    agent.start()
    watcher.wait_state(agent.device, state)  # connected, subscribed, state published
    return agent


def shutdown(agent: AgentProcess, **kw: Any) -> Command:
    return new_command(agent.device, agent.site, "shutdown", now=datetime.now(UTC), ttl_s=600, **kw)


def test_a_signed_command_shuts_each_agent_down_and_it_reports_off(
    agents: list[AgentProcess], watcher: Watcher, publisher: CommandPublisher
) -> None:
    for a in agents:
        a.user(present=False)
        started(a, watcher)
    cmds = [shutdown(a) for a in agents]
    assert publisher.publish_all(cmds) == {}
    for a, cmd in zip(agents, cmds, strict=True):
        watcher.wait_reply(a.device, cmd.id, "accepted")
        watcher.wait_reply(a.device, cmd.id, "done")
        watcher.wait_state(a.device, "off")
        wait_for(lambda a=a: a.runs() == 1, f"{a.device}'s shutdown command to run")
        assert b'"state": "off"' in (retained(agents[0].port, state_topic(a.device)) or b"")
    # Stopped afterwards (as the going-down system stops it), the agent leaves "off" standing.
    assert agents[0].stop() == 0
    assert b'"state": "off"' in (retained(agents[0].port, state_topic(agents[0].device)) or b"")


def test_a_command_captured_from_the_broker_and_sent_again_is_a_replay(
    agents: list[AgentProcess], watcher: Watcher, publisher: CommandPublisher
) -> None:
    agent = agents[0]
    agent.user(present=False)
    started(agent, watcher)
    cmd = shutdown(agent)
    publisher.publish(cmd)
    watcher.wait_reply(agent.device, cmd.id, "done")
    captured = watcher.on(command_topic(agent.site, agent.device))
    assert captured == [encode_command(cmd, KEY.encode())]
    watcher.publish(command_topic(agent.site, agent.device), captured[0])
    reply = watcher.wait_reply(agent.device, cmd.id, "rejected")
    assert str(reply["reason"]).startswith("replayed")
    # A restart does not reopen the window: the replay guard is in the agent's state file.
    agent.stop()
    started(agent, watcher)
    watcher.publish(command_topic(agent.site, agent.device), captured[0])
    wait_for(lambda: len(watcher.reply_to(agent.device, cmd.id)) == 4, "the second rejection")
    assert [r["outcome"] for r in watcher.reply_to(agent.device, cmd.id)][-1] == "rejected"
    assert agent.runs() == 1
    assert "rejected command" in agent.log_text() and "replayed" in agent.log_text()


def test_expired_wrongly_signed_and_foreign_commands_are_rejected_and_logged(
    agents: list[AgentProcess], watcher: Watcher
) -> None:
    agent, other = agents[0], agents[1]
    agent.user(present=False)
    started(agent, watcher)
    topic = command_topic(agent.site, agent.device)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = new_command(agent.device, agent.site, "shutdown", now=long_ago, ttl_s=600)
    wrong_key = shutdown(agent)
    foreign = shutdown(other)
    sent = {
        expired.id: (encode_command(expired, KEY.encode()), "expired"),
        wrong_key.id: (
            encode_command(wrong_key, b"not the site's key, but long enough"),
            "bad-signature",
        ),
        foreign.id: (encode_command(foreign, KEY.encode()), "not-for-me"),
    }
    for payload, _ in sent.values():
        watcher.publish(topic, payload)
    for command_id, (_, reason) in sent.items():
        reply = watcher.wait_reply(agent.device, command_id, "rejected")
        assert str(reply["reason"]).startswith(reason), reply
    text = agent.log_text()
    for command_id, (_, reason) in sent.items():
        assert f"rejected command {command_id}: {reason}" in text
    assert agent.runs() == 0
    assert KEY not in text


def test_an_unsigned_command_is_rejected(agents: list[AgentProcess], watcher: Watcher) -> None:
    agent = agents[0]
    agent.user(present=False)
    started(agent, watcher)
    cmd = shutdown(agent)
    signed = encode_command(cmd, KEY.encode())
    without_sig = signed[: signed.index(b',"sig"')] + signed[signed.index(b',"site"') :]
    watcher.publish(command_topic(agent.site, agent.device), without_sig)
    assert str(watcher.wait_reply(agent.device, cmd.id, "rejected")["reason"]).startswith(
        "unsigned"
    )
    assert agent.runs() == 0


def test_an_agent_killed_without_warning_shows_offline_through_its_last_will(
    agents: list[AgentProcess], watcher: Watcher
) -> None:
    agent = agents[0]
    agent.user(present=True, idle_s=5)
    started(agent, watcher, "on")
    agent.stop(signal.SIGKILL)
    watcher.wait_state(agent.device, "offline")
    assert retained(agent.port, state_topic(agent.device)) == b"offline"


def test_an_active_user_makes_the_agent_skip_and_say_so(
    agents: list[AgentProcess], watcher: Watcher, publisher: CommandPublisher
) -> None:
    agent = agents[0]
    agent.user(present=True, idle_s=30)
    started(agent, watcher, "on")
    cmd = shutdown(agent, skip_if_active_minutes=10)
    publisher.publish(cmd)
    reply = watcher.wait_reply(agent.device, cmd.id, "skipped-user-active")
    assert "user active 30 s ago" in str(reply["reason"])
    assert agent.runs() == 0 and not agent.warned.exists()


def test_a_warned_user_postpones_once_and_a_cancel_drops_the_shutdown(
    agents: list[AgentProcess], watcher: Watcher, publisher: CommandPublisher
) -> None:
    agent = agents[0]
    agent.user(present=True, idle_s=3600)
    started(agent, watcher)
    cmd = shutdown(agent, warn_minutes=5, postpone_minutes=30)
    publisher.publish(cmd)
    watcher.wait_reply(agent.device, cmd.id, "accepted")
    wait_for(agent.warned.exists, "the warning")
    warning = agent.warned.read_text()
    assert "Spara ditt arbete" in warning and "Save your work" in warning
    assert "gronkoll agent postpone" in warning and str(agent.postpone) in warning

    def postpone() -> None:
        subprocess.run(
            [sys.executable, "-m", "gronkoll.cli", "agent", "postpone"]
            + ["--postpone-file", str(agent.postpone)],
            check=True,
            capture_output=True,
        )

    postpone()
    reply = watcher.wait_reply(agent.device, cmd.id, "postponed")
    assert "postponed it by 30 min" in str(reply["reason"])
    postpone()  # a second time: refused, and the user is told
    wait_for(lambda: "cannot be postponed" in agent.warned.read_text(), "the refusal")
    assert [r["outcome"] for r in watcher.reply_to(agent.device, cmd.id)].count("postponed") == 1
    cancel = new_command(agent.device, agent.site, "cancel", now=datetime.now(UTC), ttl_s=600)
    publisher.publish(cancel)
    reply = watcher.wait_reply(agent.device, cancel.id, "done")
    assert reply["reason"] == f"cancelled the shutdown of command {cmd.id}"
    assert agent.runs() == 0
    assert agent.stop() == 0
    assert retained(agent.port, state_topic(agent.device)) == b"offline"


def test_an_agent_without_a_signing_key_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("device: pc-1\nsite: skola1\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gronkoll.cli", "agent", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{config}: signing_key: required" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_command_sent_while_the_agent_is_away_arrives_when_it_is_back(
    agents: list[AgentProcess], watcher: Watcher, publisher: CommandPublisher
) -> None:
    """The agent's persistent session: the broker keeps the command for it."""
    agent = agents[0]
    agent.user(present=False)
    started(agent, watcher)
    agent.stop()
    watcher.wait_state(agent.device, "offline")
    cmd = shutdown(agent)
    publisher.publish(cmd)  # acknowledged by the broker, with nobody connected
    agent.start()
    watcher.wait_reply(agent.device, cmd.id, "done")
    wait_for(lambda: agent.runs() == 1, "the shutdown command")


def test_an_agent_over_tls_with_a_password(
    agents: list[AgentProcess], watcher: Watcher, mosquitto: servers.Mosquitto
) -> None:
    agent = agents[0]
    agent.user(present=False)
    agent.write_config(
        broker={
            "host": mosquitto.host,
            "port": mosquitto.tls_port,
            "username": mosquitto.username,
            "password": mosquitto.password,
            "tls": {"ca_file": str(mosquitto.tls.ca_file)},
        }
    )
    started(agent, watcher)
    assert mosquitto.password not in agent.log_text()


def test_a_broker_that_refuses_the_agent_stops_it_with_one_clear_line(
    agents: list[AgentProcess], mosquitto: servers.Mosquitto
) -> None:
    agent = agents[0]
    broker = {"host": mosquitto.host, "port": mosquitto.auth_port, "username": "gronkoll"}
    agent.write_config(broker={**broker, "password": "not-the-password"})
    agent.start()
    assert agent.process is not None
    assert agent.process.wait(60) == 1
    agent.process = None
    text = agent.log_text()
    assert f"MQTT broker 127.0.0.1:{mosquitto.auth_port} refused user 'gronkoll'" in text
    assert "not-the-password" not in text and "Traceback" not in text


def test_a_broker_away_at_start_is_retried_until_the_agent_is_stopped(
    agents: list[AgentProcess],
) -> None:
    agent = agents[0]
    port = servers.free_tcp_ports(1)[0]
    agent.write_config(broker={"host": "127.0.0.1", "port": port})
    agent.start()
    wait_for(lambda: "trying again" in agent.log_text(), "the agent to say it retries")
    assert agent.stop() == 0
    assert agent.log_text().count(f"127.0.0.1:{port}: cannot connect") == 1
