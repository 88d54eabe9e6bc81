"""Watching the agents over MQTT: their retained state and their replies to commands.

One subscription per kind of message for the whole fleet (``gronkoll/agent/+/state`` and
``gronkoll/agent/+/reply``), so 5,000 machines cost two subscriptions, not 10,000. After
subscribing, ``ready`` publishes a marker to a topic of our own and waits for it: the broker
delivers a client's messages in order, so once the marker is back every retained state was
delivered before it, and a machine with none has never had an agent on this broker.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho

from gronkoll.commands import Reply, decode_reply
from gronkoll.errors import GronkollError
from gronkoll.mqtt_client import BrokerAccess, build_client, connect

STATE_FILTER = "gronkoll/agent/+/state"
REPLY_FILTER = "gronkoll/agent/+/reply"
AGENT_STATES = ("on", "idle", "sleep", "off", "offline")


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent's last published state and when we received it (by our clock)."""

    state: str  # on | idle | sleep | off | offline (its last will)
    received_at: datetime
    user_present: bool | None


class AgentWatch:
    """Keeps the newest state per agent and the replies per command, from one MQTT client."""

    def __init__(
        self, access: BrokerAccess, *, clock: Callable[[], datetime], timeout_s: float = 10
    ) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._states: dict[str, AgentState] = {}
        self._replies: dict[str, list[Reply]] = defaultdict(list)
        self._changes = 0
        self._changed: set[str] = set()
        self._marker_topic = f"gronkoll/verify/{uuid.uuid4().hex}"
        self._marker_seen = threading.Event()
        self._client = build_client(
            access, f"gronkoll-verify-{uuid.uuid4().hex[:12]}", persistent=False
        )
        self._client.on_message = self._on_message
        connect(self._client, access, timeout_s=timeout_s, persistent=False)

    def ready(self) -> None:
        """Subscribe and wait until every retained state was delivered."""
        for topic in (STATE_FILTER, REPLY_FILTER, self._marker_topic):
            self._client.subscribe(topic, qos=1)
        self._client.publish(self._marker_topic, b"marker", qos=1)
        if not self._marker_seen.wait(self.timeout_s):
            raise GronkollError(
                f"MQTT broker: the agents' retained states did not arrive in {self.timeout_s:g} s"
            )

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self._marker_topic:
            self._marker_seen.set()
            return
        parts = msg.topic.split("/")
        if len(parts) != 4:
            return
        device, kind = parts[2], parts[3]
        now = self.clock()
        with self._cond:
            if kind == "state":
                state = _state(bytes(msg.payload), now)
                if state is None:
                    return
                self._states[device] = state
            elif kind == "reply":
                try:
                    reply = decode_reply(bytes(msg.payload))
                except (ValueError, KeyError, TypeError):
                    return
                self._replies[reply.command].append(reply)
            self._changes += 1
            self._changed.add(device)
            self._cond.notify_all()

    def states(self) -> dict[str, AgentState]:
        """The newest state of every agent seen."""
        with self._cond:
            return dict(self._states)

    def state(self, device: str) -> AgentState | None:
        """The newest state of one agent, or None when it never published one."""
        with self._cond:
            return self._states.get(device)

    def take_changed(self) -> set[str]:
        """The devices a state or reply arrived for since the last call."""
        with self._cond:
            changed, self._changed = self._changed, set()
            return changed

    def replies(self, command_id: str) -> list[Reply]:
        """The replies to one command, in arrival order."""
        with self._cond:
            return list(self._replies.get(command_id, ()))

    def wait(self, timeout_s: float, seen: int) -> int:
        """Wait until something arrives after change number seen (or timeout); the newest."""
        with self._cond:
            self._cond.wait_for(lambda: self._changes != seen, timeout=timeout_s)
            return self._changes

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def _state(payload: bytes, now: datetime) -> AgentState | None:
    if payload.strip() == b"offline":
        return AgentState("offline", now, None)
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("state") not in AGENT_STATES:
        return None
    present = data.get("user_present")
    return AgentState(str(data["state"]), now, present if isinstance(present, bool) else None)
