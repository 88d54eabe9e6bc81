"""The agent's config file: the example loads, every key is shown, bad files say what is wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from test_docs import keys_in_yaml, keys_of

from gronkoll.agent.config import (
    AgentSettings,
    default_shutdown_command,
    default_warn_command,
    load_agent_settings,
)
from gronkoll.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "agent.example.yaml"
GOOD = {"device": "pc-1", "site": "skola1", "signing_key": "k" * 32}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def error(tmp_path: Path, data: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_agent_settings(write(tmp_path, data))
    return str(info.value)


def test_the_example_loads_and_shows_every_key() -> None:
    settings = load_agent_settings(EXAMPLE)
    assert settings.device == "pc-0001" and settings.broker.port == 1883
    text = EXAMPLE.read_text(encoding="utf-8")
    shown = keys_in_yaml(yaml.safe_load(text)) | set(
        f"broker.tls.{k}" for k in ("ca_file", "cert_file", "key_file") if f"# {k}:" in text
    )
    missing = {path for path, _ in keys_of(AgentSettings) if path not in shown}
    assert not missing, f"config/agent.example.yaml lacks {sorted(missing)}"


def test_defaults_per_operating_system(tmp_path: Path) -> None:
    assert default_shutdown_command("linux") == ["systemctl", "poweroff"]
    assert default_shutdown_command("win32") == ["shutdown", "/s", "/t", "0"]
    assert default_warn_command("win32") == ["msg", "*", "{message}"]
    settings = load_agent_settings(write(tmp_path, GOOD))
    assert settings.shutdown_args() == default_shutdown_command(sys.platform)
    assert settings.client_id == "gronkoll-agent-pc-1"
    assert settings.resolve(settings.state_file) == tmp_path / "gronkoll-agent-state.json"


def test_without_a_signing_key_the_agent_does_not_start(tmp_path: Path) -> None:
    text = error(tmp_path, {"device": "pc-1", "site": "skola1"})
    assert text == (
        f"{tmp_path / 'agent.yaml'}: signing_key: required: the site's signing key; "
        "the agent does not run unsigned"
    )


def test_a_short_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    text = error(tmp_path, {**GOOD, "signing_key": "short-secret-value"})
    assert "signing_key: must be at least 32 characters" in text
    assert "short-secret-value" not in text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"brokr": {}}, "brokr: unknown key (config/agent.example.yaml lists every key)"),
        ({"broker": {"port": 0}}, "broker.port: Input should be greater than or equal to 1"),
        ({"idle_source": "file"}, "idle_file: required when idle_source is file"),
        ({"warn_command": ["notify-send"]}, "warn_command: no argument holds {message}"),
        ({"device": "pc/1"}, "device: String should match pattern"),
        ({"shutdown_command": []}, "shutdown_command: List should have at least 1 item"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    assert expected in error(tmp_path, {**GOOD, **change})


def test_a_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such agent config file"):
        load_agent_settings(tmp_path / "nowhere.yaml")
    (tmp_path / "agent.yaml").write_text("device: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_agent_settings(tmp_path / "agent.yaml")
