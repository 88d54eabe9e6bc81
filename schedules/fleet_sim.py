"""A simulated fleet of PC agents on few MQTT connections, for the fan-out benchmark and tests.

Each simulated agent answers like ``gronkoll agent`` without a logged-in user: it verifies
every command with the real `decode_command` (its site's key, its own replay guard), rejects
what the agent would reject, and for a valid shutdown replies ``accepted``, publishes its
state ``off`` (retained) and replies ``done``. Nothing is switched off: this is a simulation
and says so. Agents share one MQTT connection per `per_connection` of them, subscribing to
each agent's own command topic, as 5,000 real agents would on 5,000 connections.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import paho.mqtt.client as paho

from gronkoll.commands import (
    CommandRejected,
    command_topic,
    decode_command,
    encode_reply,
    iso_z,
    reply_topic,
    state_topic,
)
from gronkoll.mqtt_client import BrokerAccess, build_client, connect
from gronkoll.replay_guard import ReplayGuard

Behaviour = Literal["comply", "user-active", "postpone", "silent"]


@dataclass(kw_only=True)
class SimAgent:
    """One simulated computer: what it does with a shutdown, and what happened to it."""

    device: str
    site: str
    behaviour: Behaviour = "comply"
    state: str = "idle"
    guard: ReplayGuard = field(default_factory=ReplayGuard)
    rejected: list[str] = field(default_factory=list)  # reasons, in order
    taken: list[str] = field(default_factory=list)  # command ids carried out or answered


def _state_payload(state: str, t: datetime) -> bytes:
    return json.dumps(
        {"v": 1, "state": state, "idle_s": 0, "user_present": False, "agent": "sim", "t": iso_z(t)}
    ).encode()


class SimulatedFleet:
    """Runs simulated agents on one MQTT connection per `per_connection` of them."""

    def __init__(
        self,
        access: BrokerAccess,
        agents: Sequence[SimAgent],
        keys: Mapping[str, bytes],
        *,
        clock: Callable[[], datetime],
        per_connection: int = 500,
    ) -> None:
        self.access = access
        self.agents = {a.device: a for a in agents}
        self.keys = dict(keys)
        self.clock = clock
        self.per_connection = per_connection
        self._clients: list[paho.Client] = []
        self._lock = threading.Lock()
        self.answered = 0

    def start(self) -> None:
        """Connect, publish every agent's state (retained) and subscribe to its commands."""
        agents = list(self.agents.values())
        for i in range(0, len(agents), self.per_connection):
            chunk = agents[i : i + self.per_connection]
            client = build_client(
                self.access, f"sim-fleet-{uuid.uuid4().hex[:10]}", persistent=False
            )
            client.on_message = self._on_message
            connect(client, self.access, timeout_s=30, persistent=False)
            now = self.clock()
            for a in chunk:
                client.publish(
                    state_topic(a.device), _state_payload(a.state, now), qos=1, retain=True
                )
            done = threading.Event()
            client.on_subscribe = lambda *_args, _done=done: _done.set()
            client.subscribe([(command_topic(a.site, a.device), 1) for a in chunk])
            if not done.wait(30):
                raise TimeoutError("the broker did not acknowledge the fleet's subscriptions")
            self._clients.append(client)

    def _on_message(self, client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        device = msg.topic.rsplit("/", 1)[-1]
        agent = self.agents.get(device)
        if agent is None:
            return
        now = self.clock()
        try:
            cmd = decode_command(
                bytes(msg.payload), self.keys[agent.site], device=device, now=now, seen=agent.guard
            )
        except CommandRejected as err:
            agent.rejected.append(err.reason)
            client.publish(
                reply_topic(device), encode_reply("0" * 32, "rejected", err.reason, now), qos=1
            )
            return
        agent.taken.append(cmd.id)
        outcome = {"user-active": "skipped-user-active", "postpone": "postponed"}.get(
            agent.behaviour
        )
        if agent.behaviour == "silent":
            return
        if outcome is not None:
            client.publish(reply_topic(device), encode_reply(cmd.id, outcome, None, now), qos=1)  # type: ignore[arg-type]
        elif cmd.action == "shutdown":
            client.publish(reply_topic(device), encode_reply(cmd.id, "accepted", None, now), qos=1)
            agent.state = "off"
            client.publish(state_topic(device), _state_payload("off", now), qos=1, retain=True)
            client.publish(reply_topic(device), encode_reply(cmd.id, "done", None, now), qos=1)
        with self._lock:
            self.answered += 1

    def reset(self, state: str = "idle") -> None:
        """Turn every agent back on: publish its state again (retained) and wait for the acks."""
        agents = list(self.agents.values())
        now = self.clock()
        for i, client in enumerate(self._clients):
            chunk = agents[i * self.per_connection : (i + 1) * self.per_connection]
            infos = []
            for a in chunk:
                a.state = state
                payload = _state_payload(state, now)
                infos.append(client.publish(state_topic(a.device), payload, qos=1, retain=True))
            for info in infos:
                info.wait_for_publish(30)

    def clear(self) -> None:
        """Remove every agent's retained state from the broker."""
        for i, client in enumerate(self._clients):
            chunk = list(self.agents.values())[
                i * self.per_connection : (i + 1) * self.per_connection
            ]
            infos = [client.publish(state_topic(a.device), b"", qos=1, retain=True) for a in chunk]
            for info in infos:
                info.wait_for_publish(10)

    def stop(self) -> None:
        """Clear the retained states and disconnect."""
        self.clear()
        for client in self._clients:
            client.disconnect()
            client.loop_stop()
        self._clients.clear()
