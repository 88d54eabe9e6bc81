"""The agent's own configuration file (agent.yaml): one computer, its site key and broker.

The agent is its own program on each school computer, so it has its own small file rather
than the server's gronkoll.yaml. config/agent.example.yaml shows every key at its default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator

from gronkoll.commands import DEFAULT_MAX_SKEW_S, MIN_KEY_CHARS
from gronkoll.errors import ConfigError
from gronkoll.mqtt_client import BrokerAccess, broker_access
from gronkoll.settings import BrokerConnection, Identifier, Strict, invalid_config, load_yaml

IdleSource = Literal["auto", "loginctl", "who", "windows", "file", "none"]
#: The text a warning command's arguments may hold; the warning replaces it.
MESSAGE = "{message}"


def default_shutdown_command(platform: str = sys.platform) -> list[str]:
    """The command that powers the computer off on this operating system."""
    if platform == "win32":
        return ["shutdown", "/s", "/t", "0"]
    return ["systemctl", "poweroff"]


def default_warn_command(platform: str = sys.platform) -> list[str]:
    """The command that shows a logged-in user a message on this operating system."""
    if platform == "win32":
        return ["msg", "*", MESSAGE]  # every session on this computer
    return ["notify-send", "--urgency=critical", "Gronkoll", MESSAGE]


def default_postpone_file(platform: str = sys.platform) -> Path:
    """Where a user drops the postpone request: the system's temporary folder, the same for
    the agent (root or SYSTEM) and the user (whose own TEMP differs on Windows)."""
    if platform == "win32":
        return Path(os.environ.get("SystemRoot", r"C:\Windows")) / "Temp" / "gronkoll-postpone"
    return Path("/tmp/gronkoll-postpone")  # noqa: S108 (shared with the user on purpose)


class AgentBroker(BrokerConnection):
    """The MQTT broker the agent talks to."""

    client_id: str | None = None  # default: gronkoll-agent-<device>


class AgentSettings(Strict):
    """Everything `gronkoll agent` needs to know about its computer."""

    device: Identifier
    site: Identifier
    signing_key: SecretStr
    broker: AgentBroker = AgentBroker()
    state_interval_s: float = Field(default=60, ge=1)
    idle_after_s: int = Field(default=600, ge=0)
    idle_source: IdleSource = "auto"
    idle_file: str | None = None
    shutdown_command: list[str] | None = Field(default=None, min_length=1)
    warn_command: list[str] | None = None
    state_file: str = "gronkoll-agent-state.json"
    postpone_file: str | None = None
    max_clock_skew_s: float = Field(default=DEFAULT_MAX_SKEW_S, ge=0)
    broker_timeout_s: float = Field(default=10, gt=0)

    # Not part of the file: where it was read from, for relative paths and messages.
    source: Path = Field(default=Path("agent.yaml"), exclude=True)

    @field_validator("signing_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_KEY_CHARS} characters (the site's key from the "
                "server's shutdown.signing_keys)"
            )
        return value

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to the file's folder."""
        return (self.source.resolve().parent / path).resolve()

    @property
    def key(self) -> bytes:
        """The signing key as bytes (UTF-8), as the server signs with it."""
        return self.signing_key.get_secret_value().encode("utf-8")

    @property
    def client_id(self) -> str:
        """The client id that names the agent's persistent session."""
        return self.broker.client_id or f"gronkoll-agent-{self.device}"

    def shutdown_args(self) -> list[str]:
        """The shutdown command to run, the configured one or the system's default."""
        return list(self.shutdown_command or default_shutdown_command())

    def warn_args(self) -> list[str]:
        """The warning command, with {message} where the message goes."""
        return list(default_warn_command() if self.warn_command is None else self.warn_command)

    def postpone_path(self) -> Path:
        """The file a user creates to postpone a pending shutdown once."""
        return self.resolve(self.postpone_file) if self.postpone_file else default_postpone_file()

    def access(self) -> BrokerAccess:
        """How to reach the broker, with TLS paths resolved against this file."""
        return broker_access(self.broker, self.resolve)


def parse_agent_settings(data: Any, source: Path) -> AgentSettings:
    """Validate parsed YAML; ConfigError naming the file and each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with device, site and signing_key")
    try:
        settings = AgentSettings.model_validate({**data, "source": source})
    except ValidationError as err:
        raise invalid_config(
            err,
            source,
            unknown_key="unknown key (config/agent.example.yaml lists every key)",
            missing={
                "signing_key": "required: the site's signing key; the agent does not run unsigned"
            },
        ) from None
    if settings.idle_source == "file" and not settings.idle_file:
        raise ConfigError(f"{source}: idle_file: required when idle_source is file")
    if settings.warn_command and not any(MESSAGE in a for a in settings.warn_command):
        raise ConfigError(f"{source}: warn_command: no argument holds {MESSAGE}")
    return settings


def load_agent_settings(path: str | Path) -> AgentSettings:
    """Read and check agent.yaml; ConfigError with a message for the user."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such agent config file (config/agent.example.yaml is a start)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None
    return parse_agent_settings(data, source)
