"""MQTT traffic for the ingestion tests: a QoS 1 publisher, session clean-up, stored rows.

Everything talks to the session's Mosquitto on 127.0.0.1. Tests never sleep waiting for
something to happen: `wait_for` polls a condition until a deadline.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import servers
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEADLINE_S = 60.0
_POLL_S = 0.05


def wait_for(condition: Callable[[], object], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll condition until it is true; fail naming what was awaited after deadline_s."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(_POLL_S)


class Publisher:
    """A paho-mqtt client publishing at QoS 1; publish_all returns once the broker has all."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(servers.HOST, port)
        self.client.loop_start()

    def publish_all(self, messages: Iterable[tuple[str, bytes | str]]) -> int:
        """Publish every (topic, payload) at QoS 1 and wait for each PUBACK; how many."""
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=DEADLINE_S)
            assert info.is_published(), f"the broker did not take message {info.mid}"
        return len(infos)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(port: int, client_id: str) -> None:
    """Connect as client_id with a clean start and no expiry, so the broker drops its session."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    done = threading.Event()
    client.on_connect = lambda *_: done.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect(servers.HOST, port, clean_start=True, properties=props)
    client.loop_start()
    done.wait(DEADLINE_S)
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class Row:
    """A stored reading as the SQLite store keeps it."""

    device: str
    field: str
    t: int
    value: float
    wh: float | None


def stored_rows(data_dir: Path) -> list[Row]:
    """Every reading in the SQLite store under data_dir (read-only, while a writer runs)."""
    path = data_dir / "timeseries.db"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        try:
            rows = db.execute(
                "SELECT s.device, s.field, r.t, r.value, r.wh "
                "FROM readings r JOIN series s ON s.id = r.series"
            ).fetchall()
        except sqlite3.OperationalError:  # no readings table yet
            return []
    return [Row(*r) for r in rows]


def stored_count(data_dir: Path) -> int:
    """How many readings the store holds."""
    return len(stored_rows(data_dir))


def assert_each_once(rows: list[Row], expected: dict[tuple[str, str], list[float]]) -> None:
    """Each series holds exactly the expected values, each once, and no time twice."""
    twice = [k for k, n in Counter((r.device, r.field, r.t) for r in rows).items() if n > 1]
    assert not twice, f"{len(twice)} (device, field, time) stored more than once: {twice[:5]}"
    got: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r.t):
        got[(r.device, r.field)].append(r.value)
    wrong = {k: (got.get(k), v) for k, v in expected.items() if sorted(got.get(k, [])) != sorted(v)}
    assert not wrong, f"{len(wrong)} series differ (got, expected): {list(wrong.items())[:3]}"
    extra = set(got) - set(expected)
    assert not extra, f"unexpected series {sorted(extra)[:5]}"


def energy_wh(rows: list[Row]) -> dict[str, float]:
    """The energy stored per device, in Wh."""
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        if r.wh is not None:
            out[r.device] += r.wh
    return {d: round(wh, 6) for d, wh in out.items()}
