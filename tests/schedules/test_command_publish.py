"""CommandPublisher against a real Mosquitto: TLS and a password, PUBACK, the site's key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import servers
from agent_procs import Watcher
from mqtt_traffic import wait_for

from gronkoll.commands import command_topic, decode_command, new_command
from gronkoll.errors import ConfigError
from gronkoll.mqtt_client import BrokerAccess, BrokerUnavailable
from gronkoll.replay_guard import ReplayGuard
from gronkoll.schedules.publish import CommandPublisher
from gronkoll.settings import Settings, parse_settings

KEY = "skola1-key-0123456789abcdef0123456789"

pytestmark = pytest.mark.integration


def tls_settings(tmp_path: Path, broker: servers.Mosquitto, **mqtt: object) -> Settings:
    data = {
        "municipality": {"name": "Exempelby"},
        "sites": [{"id": "skola1"}, {"id": "skola2"}],
        "devices": [{"id": "pc-1", "site": "skola1", "kind": "pc"}],
        "mqtt": {
            "host": broker.host,
            "port": broker.tls_port,
            "username": broker.username,
            "password": broker.password,
            "tls": {"ca_file": str(broker.tls.ca_file)},
            **mqtt,
        },
        "shutdown": {"signing_keys": {"skola1": KEY}},
    }
    return parse_settings(data, tmp_path / "gronkoll.yaml")


def test_commands_go_out_signed_over_tls_and_are_acknowledged(
    tmp_path: Path, mosquitto: servers.Mosquitto, watcher: Watcher
) -> None:
    now = datetime.now(UTC)
    cmds = [new_command(f"pc-{n}", "skola1", "shutdown", now=now, ttl_s=600) for n in range(50)]
    with CommandPublisher.from_settings(tls_settings(tmp_path, mosquitto)) as publisher:
        assert publisher.publish_all(cmds) == {}  # every PUBACK came
    topics = [command_topic("skola1", c.device) for c in cmds]
    wait_for(lambda: all(watcher.on(t) for t in topics), "every command at the subscriber")
    for cmd, topic in zip(cmds, topics, strict=True):
        (payload,) = watcher.on(topic)
        got = decode_command(payload, KEY.encode(), device=cmd.device, now=now, seen=ReplayGuard())
        assert got == cmd


def test_a_site_without_a_key_is_refused_before_anything_is_sent(
    tmp_path: Path, mosquitto: servers.Mosquitto, watcher: Watcher
) -> None:
    now = datetime.now(UTC)
    good = new_command("pc-9", "skola1", "cancel", now=now, ttl_s=60)
    keyless = new_command("pc-8", "skola2", "shutdown", now=now, ttl_s=60)
    with (
        CommandPublisher.from_settings(tls_settings(tmp_path, mosquitto)) as publisher,
        pytest.raises(ConfigError) as info,
    ):
        publisher.publish_all([good, keyless])
    assert "shutdown.signing_keys: no key for site 'skola2'" in str(info.value)
    assert not watcher.on(command_topic("skola1", "pc-9"))


def test_a_wrong_password_is_a_clear_error_without_the_password(
    tmp_path: Path, mosquitto: servers.Mosquitto
) -> None:
    settings = tls_settings(tmp_path, mosquitto, password="not-the-password")
    with pytest.raises(BrokerUnavailable) as info:
        CommandPublisher.from_settings(settings, timeout_s=10).connect()
    text = str(info.value)
    assert f"127.0.0.1:{mosquitto.tls_port}" in text and "refused user 'gronkoll'" in text
    assert info.value.refused and "not-the-password" not in text


def test_a_broker_that_is_not_there_is_a_clear_error() -> None:
    port = servers.free_tcp_ports(1)[0]
    publisher = CommandPublisher(BrokerAccess(host="127.0.0.1", port=port), {})
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}: cannot connect"):
        publisher.connect()
