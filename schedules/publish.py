"""Publishing signed commands: sign with the site's key, publish at QoS 1, wait for PUBACK.

`CommandPublisher` holds one connection to the broker of the ``mqtt:`` settings (host, port,
TLS, user and password) under a client id of its own, so it never takes over the collector's
session. A command counts as sent only when the broker has acknowledged it (PUBACK): what the
broker acknowledged, it delivers to the agent's persistent session even if the agent is
away for a while (until the command expires, after which the agent rejects it anyway).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

import paho.mqtt.client as paho

from gronkoll import mqtt_client
from gronkoll.commands import Command, command_topic, encode_command
from gronkoll.errors import ConfigError
from gronkoll.mqtt_client import BrokerAccess, BrokerUnavailable, build_client, connect
from gronkoll.settings import Settings

ClientFactory = Callable[[BrokerAccess, str], paho.Client]


def _new_client(access: BrokerAccess, client_id: str) -> paho.Client:
    return build_client(access, client_id, persistent=False)


def broker_access(settings: Settings) -> BrokerAccess:
    """The broker of the mqtt settings, with TLS paths resolved against the config file."""
    if settings.mqtt is None:
        raise ConfigError(f"{settings.source}: mqtt: no mqtt section (commands go over MQTT)")
    return mqtt_client.broker_access(settings.mqtt, settings.resolve)


class CommandPublisher:
    """Signs commands with their site's key and publishes them at QoS 1, waiting for PUBACK."""

    def __init__(
        self,
        access: BrokerAccess,
        keys: Mapping[str, bytes],
        *,
        client_id: str | None = None,
        timeout_s: float = 30.0,
        client_factory: ClientFactory = _new_client,
        source: str = "the config file",
    ) -> None:
        self.access = access
        self._keys = dict(keys)
        self.client_id = client_id or f"gronkoll-commands-{uuid.uuid4().hex[:8]}"
        self.timeout_s = timeout_s
        self._client_factory = client_factory
        self._source = source
        self._client: paho.Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_s: float = 30.0) -> CommandPublisher:
        """A publisher for the broker of ``mqtt:`` and the keys of ``shutdown.signing_keys``."""
        keys = {
            site: secret.get_secret_value().encode("utf-8")
            for site, secret in settings.shutdown.signing_keys.items()
        }
        mqtt = settings.mqtt
        prefix = mqtt.client_id if mqtt is not None else "gronkoll"
        return cls(
            broker_access(settings),
            keys,
            client_id=f"{prefix}-commands-{uuid.uuid4().hex[:8]}",
            timeout_s=timeout_s,
            source=str(settings.source),
        )

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> paho.Client:
        """Connect to the broker; BrokerUnavailable when it cannot be reached or refuses."""
        if self._client is None:
            client = self._client_factory(self.access, self.client_id)
            connect(client, self.access, timeout_s=self.timeout_s, persistent=False)
            self._client = client
        return self._client

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def payload(self, cmd: Command) -> bytes:
        """The signed message for cmd; ConfigError when its site has no signing key."""
        key = self._keys.get(cmd.site)
        if key is None:
            raise ConfigError(
                f"{self._source}: shutdown.signing_keys: no key for site {cmd.site!r} "
                f"(device {cmd.device!r})"
            )
        return encode_command(cmd, key)

    def publish(self, cmd: Command) -> None:
        """Publish one command and wait for the broker's PUBACK; BrokerUnavailable if none."""
        failures = self.publish_all([cmd])
        if failures:
            raise BrokerUnavailable(failures[cmd.id])

    def publish_all(self, cmds: Sequence[Command]) -> dict[str, str]:
        """Publish commands, then wait for every PUBACK within the timeout.

        Returns the commands the broker did not acknowledge: command id → why. A command
        whose site has no key raises ConfigError before anything is sent.
        """
        payloads = [(cmd, self.payload(cmd)) for cmd in cmds]
        client = self.connect()
        sent = [
            (cmd, client.publish(command_topic(cmd.site, cmd.device), data, qos=1))
            for cmd, data in payloads
        ]
        deadline = time.monotonic() + self.timeout_s
        failures: dict[str, str] = {}
        for cmd, info in sent:
            if info.rc != paho.MQTT_ERR_SUCCESS:  # e.g. the connection dropped meanwhile
                failures[cmd.id] = f"could not publish: {paho.error_string(info.rc)}"
                continue
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                failures[cmd.id] = (
                    f"MQTT broker {self.access.address} did not acknowledge the command for "
                    f"{cmd.device} within {self.timeout_s:g} s"
                )
        return failures
