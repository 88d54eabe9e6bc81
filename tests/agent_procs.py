"""Real `gronkoll agent` processes for tests, and a subscriber that watches what they say.

Each `AgentProcess` runs `python -m gronkoll.cli agent -c agent.yaml` against a real broker.
Its shutdown command cannot power a computer off here, so it is a small Python program that
appends a line to ``ran`` (the test then knows it ran, and how often); its warning command
appends the message to ``warned``. Who is logged in comes from a presence file the test
writes (the agent's ``file`` idle source).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import servers
import yaml
from mqtt_traffic import DEADLINE_S, wait_for

from gronkoll.commands import reply_topic, state_topic

KEY = "0123456789abcdef0123456789abcdef-test"
#: Appends argv[2:] joined by spaces as one line to the file argv[1]: the fake shutdown and
#: warning commands.
RECORD = (
    "import sys\n"
    "with open(sys.argv[1], 'a', encoding='utf-8') as f:\n"
    "    f.write(' '.join(sys.argv[2:]).replace('\\n', ' ') + '\\n')\n"
)


@dataclass
class AgentProcess:
    """One real agent process and its files."""

    device: str
    site: str
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.folder / "agent.yaml"

    @property
    def ran(self) -> Path:
        """Lines appended by the fake shutdown command, one per run."""
        return self.folder / "ran"

    @property
    def warned(self) -> Path:
        return self.folder / "warned"

    @property
    def presence(self) -> Path:
        return self.folder / "presence.json"

    @property
    def postpone(self) -> Path:
        return self.folder / "postpone"

    @property
    def log(self) -> Path:
        return self.folder / "agent.log"

    def write_config(self, **changes: object) -> None:
        config: dict[str, object] = {
            "device": self.device,
            "site": self.site,
            "signing_key": KEY,
            "broker": {"host": servers.HOST, "port": self.port},
            "state_interval_s": 30,
            "idle_source": "file",
            "idle_file": str(self.presence),
            "shutdown_command": [sys.executable, "-c", RECORD, str(self.ran), "shutdown"],
            "warn_command": [sys.executable, "-c", RECORD, str(self.warned), "{message}"],
            "state_file": "state.json",
            "postpone_file": str(self.postpone),
        }
        config.update(changes)
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")

    def user(self, *, present: bool, idle_s: float | None = None) -> None:
        """Say who is at the computer (the agent reads it when it needs to)."""
        self.presence.write_text(json.dumps({"user_present": present, "idle_s": idle_s}))

    def start(self) -> None:
        if not self.config.exists():
            self.write_config()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gronkoll.cli", "agent", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process with sig and return its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(DEADLINE_S)
        self.process = None
        return code

    def runs(self) -> int:
        """How often the fake shutdown command ran."""
        return len(self.ran.read_text().splitlines()) if self.ran.exists() else 0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


class Watcher:
    """Subscribes to agents' states and replies (and, to capture them, to commands)."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="w-" + uuid.uuid4().hex
        )
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(servers.HOST, port)
        self.client.loop_start()
        self.client.subscribe([("gronkoll/agent/#", 1), ("gronkoll/cmd/#", 1)])
        assert subscribed.wait(DEADLINE_S)

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def replies(self, device: str) -> list[dict[str, object]]:
        """The device's replies, decoded, in the order they came."""
        return [json.loads(p) for p in self.on(reply_topic(device))]

    def reply_to(self, device: str, command_id: str) -> list[dict[str, object]]:
        return [r for r in self.replies(device) if r["command"] == command_id]

    def wait_reply(self, device: str, command_id: str, outcome: str) -> dict[str, object]:
        """The first reply with this outcome to a command, once it has come."""
        found: list[dict[str, object]] = []

        def came() -> bool:
            found[:] = [r for r in self.reply_to(device, command_id) if r["outcome"] == outcome]
            return bool(found)

        wait_for(came, f"{device} to reply {outcome} to {command_id}")
        return found[0]

    def last_state(self, device: str) -> bytes | None:
        states = self.on(state_topic(device))
        return states[-1] if states else None

    def wait_state(self, device: str, state: str) -> None:
        def is_it() -> bool:
            last = self.last_state(device)
            if last == b"offline" or last is None:
                return last == state.encode()
            return bool(json.loads(last)["state"] == state)

        wait_for(is_it, f"{device} to publish the state {state}")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(DEADLINE_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str) -> bytes | None:
    """What the broker keeps retained on topic, read by a new subscriber."""
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(bytes(m.payload)) if m.retain else None
    client.connect(servers.HOST, port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    try:
        wait_for(lambda: got, f"a retained message on {topic}", deadline_s=3)
    except AssertionError:
        return None
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1]


def fleet(folder: Path, port: int, count: int, site: str = "skola1") -> Iterator[AgentProcess]:
    """count agents with devices of a name this test owns, each in its own folder."""
    prefix = "pc-" + uuid.uuid4().hex[:6]
    for n in range(count):
        sub = folder / f"agent-{n}"
        sub.mkdir()
        yield AgentProcess(device=f"{prefix}-{n}", site=site, folder=sub, port=port)


def stop_and_clear(agents: list[AgentProcess], port: int) -> None:
    """Stop the agents still running (a clean disconnect: no last will left behind) and clear
    their retained states: later tests' collectors subscribe to gronkoll/agent/+/state."""
    for agent in agents:
        if agent.process is not None:
            agent.stop()
    clear_retained(port, [state_topic(a.device) for a in agents])


def clear_retained(port: int, topics: list[str]) -> None:
    """Remove retained messages, so a later test's subscriber does not receive them."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="clear-" + uuid.uuid4().hex)
    client.connect(servers.HOST, port)
    client.loop_start()
    try:
        for info in [client.publish(t, b"", qos=1, retain=True) for t in topics]:
            info.wait_for_publish(DEADLINE_S)
    finally:
        client.disconnect()
        client.loop_stop()
