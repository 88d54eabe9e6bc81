"""`gronkoll agent`: the agent's connection, its processes and its one loop.

The agent keeps a persistent MQTT session (client id ``gronkoll-agent-<device>``) so that a
command published while it reconnects still arrives, subscribes to its command topic at
QoS 1, and leaves the last will ``offline`` (retained) on its state topic, so a computer that
dies or loses its network shows as offline. paho's network thread only hands messages to a
queue; one loop takes them and the passing time to `AgentCore`, so decisions happen one at
a time. Stopping (SIGTERM, SIGINT) publishes ``offline`` unless the agent has just shut the
computer down, whose ``off`` then stays.

A broker that cannot be reached at start is retried with capped backoff (a computer may boot
before its network is up); a broker that refuses the agent's credentials stops it.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import paho.mqtt.client as paho

from gronkoll import __version__
from gronkoll.agent.config import MESSAGE, AgentSettings
from gronkoll.agent.core import AgentCore
from gronkoll.agent.presence import Presence, presence_source
from gronkoll.commands import (
    Command,
    Outcome,
    command_topic,
    encode_reply,
    reply_topic,
    state_topic,
)
from gronkoll.mqtt_client import BrokerUnavailable, build_client, connect
from gronkoll.replay_guard import ReplayGuard

log = logging.getLogger(__name__)

LAST_WILL = b"offline"
#: Longest wait between two attempts to reach the broker at start (seconds).
MAX_BACKOFF_S = 60.0
#: How long the agent waits for the broker's PUBACK of ``off`` and ``done`` before it runs
#: the shutdown command anyway (the computer goes off whether or not the broker heard).
ACK_WAIT_S = 10.0
COMMAND_TIMEOUT_S = 120.0
#: A warning still on screen after this long is left alone (its process is ended).
WARN_TIMEOUT_S = 900.0


def now_utc() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def state_payload(presence: Presence, state: str, t: datetime) -> bytes:
    """The ``gronkoll-agent`` v1 state message of docs/mqtt.md."""
    body: dict[str, Any] = {
        "v": 1,
        "state": state,
        "user_present": presence.user_present,
        "agent": __version__,
        "t": t.astimezone(UTC).isoformat(timespec="seconds"),
    }
    if presence.idle_s is not None:
        body["idle_s"] = round(presence.idle_s)
    return json.dumps(body).encode("utf-8")


class MqttEffects:
    """The agent's effects: MQTT messages and the warning and shutdown commands."""

    def __init__(self, settings: AgentSettings, client: paho.Client, clock: Callable[[], datetime]):
        self.settings = settings
        self.client = client
        self.clock = clock
        self._state_topic = state_topic(settings.device)
        self._reply_topic = reply_topic(settings.device)

    def reply(self, command_id: str | None, outcome: Outcome, reason: str | None) -> None:
        payload = encode_reply(command_id or "", outcome, reason, self.clock())
        self.client.publish(self._reply_topic, payload, qos=1)

    def publish_state(self, presence: Presence) -> None:
        idle = presence.idle_s is not None and presence.idle_s >= self.settings.idle_after_s
        state = "on" if presence.user_present and not idle else "idle"
        payload = state_payload(presence, state, self.clock())
        self.client.publish(self._state_topic, payload, qos=1, retain=True)

    def warn(self, message: str) -> None:
        args = [a.replace(MESSAGE, message) for a in self.settings.warn_args()]
        if not args:
            return
        log.info("warning the user: %s", message.replace("\n", " "))
        # In the background: `msg` and some notifiers wait for the user to click.
        threading.Thread(target=_run_warning, args=(args,), daemon=True).start()

    def shut_down(self, cmd: Command) -> bool:
        off = state_payload(Presence(user_present=False), "off", self.clock())
        sent = [
            self.client.publish(self._state_topic, off, qos=1, retain=True),
            self.client.publish(
                self._reply_topic, encode_reply(cmd.id, "done", None, self.clock()), qos=1
            ),
        ]
        for info in sent:
            if info.rc == paho.MQTT_ERR_SUCCESS:
                info.wait_for_publish(ACK_WAIT_S)
        args = self.settings.shutdown_args()
        try:
            done = subprocess.run(  # noqa: S603 (the configured command, no shell)
                args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
            )
        except (OSError, subprocess.SubprocessError) as err:
            log.error("the shutdown command %s failed: %s", args, err)
            return False
        if done.returncode != 0:
            log.error(
                "the shutdown command %s exited with %d: %s",
                args,
                done.returncode,
                done.stderr.strip()[-500:],
            )
            return False
        return True


def _run_warning(args: list[str]) -> None:
    try:
        done = subprocess.run(  # noqa: S603 (the configured command, no shell)
            args, capture_output=True, text=True, timeout=WARN_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.error("cannot warn the user with %s: %s", args[0], err)
        return
    if done.returncode != 0:
        log.error(
            "the warning command %s exited with %d: %s",
            args[0],
            done.returncode,
            done.stderr.strip()[-500:],
        )


class Agent:
    """One agent process: connection, core and loop."""

    def __init__(self, settings: AgentSettings, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.settings = settings
        self.clock = clock
        self.inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.client = build_client(settings.access(), settings.client_id, persistent=True)
        self.client.will_set(state_topic(settings.device), LAST_WILL, qos=1, retain=True)
        self.client.on_message = self._message
        guard = ReplayGuard.load(
            settings.resolve(settings.state_file),
            now=clock(),
            max_skew_s=settings.max_clock_skew_s,
        )
        self.core = AgentCore(
            device=settings.device,
            key=settings.key,
            guard=guard,
            presence=presence_source(
                settings.idle_source,
                settings.resolve(settings.idle_file) if settings.idle_file else None,
            ),
            effects=MqttEffects(settings, self.client, clock),
            clock=clock,
            postpone_file=settings.postpone_path(),
            state_interval_s=settings.state_interval_s,
            max_skew_s=settings.max_clock_skew_s,
        )

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.inbox.put(("command", bytes(message.payload)))

    def _connected(self, session_present: bool) -> None:
        topic = command_topic(self.settings.site, self.settings.device)
        self.client.subscribe(topic, qos=1)  # again on every connect: a lost session forgot it
        self.inbox.put(("connected", b""))

    def stop(self) -> None:
        """Ask the loop to end (from a signal handler or another thread)."""
        self.stopping.set()
        self.inbox.put(("stop", b""))

    def run(self) -> int:
        """Connect (retrying while the broker cannot be reached) and serve until stopped."""
        if not self._connect():
            return 0
        log.info(
            "agent for %s (site %s) connected to %s",
            self.settings.device,
            self.settings.site,
            self.settings.access().address,
        )
        try:
            while not self.stopping.is_set():
                wait = self.core.tick()
                try:
                    kind, payload = self.inbox.get(timeout=wait)
                except queue.Empty:
                    continue
                if kind == "command":
                    self.core.on_payload(payload)
                elif kind == "connected":
                    self.core.on_connected()
        finally:
            self._disconnect()
        return 0

    def _connect(self) -> bool:
        """Connect; a refusal stops the agent, anything else is retried (and logged once)."""
        backoff, attempts = 1.0, 0
        settings = self.settings
        while not self.stopping.is_set():
            attempts += 1
            try:
                connect(
                    self.client,
                    settings.access(),
                    timeout_s=settings.broker_timeout_s,
                    persistent=True,
                    session_expiry_s=settings.broker.session_expiry_s,
                    on_connect=self._connected,
                )
            except BrokerUnavailable as err:
                if err.refused:
                    raise
                if attempts == 1:
                    log.warning("%s; trying again, at most every %.0f s", err, MAX_BACKOFF_S)
                else:
                    log.debug("%s (attempt %d)", err, attempts)
            else:
                if attempts > 1:
                    log.warning("reached the MQTT broker after %d attempts", attempts)
                return True
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        return False

    def _disconnect(self) -> None:
        if not self.core.off:  # the machine's state is no longer known
            info = self.client.publish(
                state_topic(self.settings.device), LAST_WILL, qos=1, retain=True
            )
            if info.rc == paho.MQTT_ERR_SUCCESS:
                info.wait_for_publish(ACK_WAIT_S)
        self.client.disconnect()
        self.client.loop_stop()


def run_agent(settings: AgentSettings) -> int:
    """Run the agent in this process until SIGTERM or SIGINT."""
    agent = Agent(settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return agent.run()
