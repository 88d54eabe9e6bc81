"""MQTT traffic for the ingestion tests: configs, a QoS 1 publisher, session clean-up, rows.

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
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import servers
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gronkoll.cli import main

DEADLINE_S = 60.0
_POLL_S = 0.05
#: Recorded payloads and sequences (README.md there cites each format's documentation).
FIXTURES = Path(__file__).parent / "fixtures" / "mqtt"

# The subscriptions of the recorded sequences (tests/fixtures/mqtt/README.md).
SUBSCRIPTIONS = """\
    - {topic: "tele/+/SENSOR", format: tasmota, device_level: 1}
    - {topic: "shellies/#", format: shelly-gen1}
    - {topic: "+/status/switch:0", format: shelly-gen2, device_level: 0}
    - {topic: "+/events/rpc", format: shelly-gen2, device_level: 0}
    - {topic: "zigbee2mqtt/#", format: zigbee2mqtt}
    - {topic: "matare/+/energi", format: number, device_level: 1, field: energy_wh_total, scale: 1000}
    - {topic: "gronkoll/agent/+/state", format: gronkoll-agent, device_level: 2}
    - {topic: "gronkoll/meeting/+", format: gronkoll-meeting, device_level: 2}
    - {topic: "gronkoll/meetings", format: gronkoll-meeting}
"""


def write_config(folder: Path, devices: str, mqtt: str = "", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gronkoll.yaml"
    path.write_text(
        f"""\
municipality: {{name: Exempelby, timezone: Europe/Stockholm}}
sites:
  - {{id: skola1, kind: school}}
  - {{id: kommunhuset, kind: office}}
devices:
{devices}
store: {{kind: sqlite, path: data, busy_timeout_s: 2}}
{mqtt}{extra}""",
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-c", str(config), *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- payloads, as each format's documentation shows them (tests/fixtures/mqtt/README.md) ------
def tasmota_payload(time_text: str = "2025-02-03T10:15:00", **energy: object) -> dict[str, Any]:
    """A Tasmota SENSOR telemetry object; energy overrides the ENERGY values."""
    base: dict[str, object] = {
        "TotalStartTime": "2024-08-19T08:02:11",
        "Total": 87.512,
        "Yesterday": 0.913,
        "Today": 0.402,
        "Period": 6,
        "Power": 71,
        "ApparentPower": 82,
        "ReactivePower": 41,
        "Factor": 0.87,
        "Voltage": 229,
        "Current": 0.358,
    }
    return {"Time": time_text, "ENERGY": {**base, **energy}}


def shelly_gen2_status(total_wh: float = 5120.402, minute_ts: int = 1738573200) -> dict[str, Any]:
    """A Shelly Gen2 switch:0 status with its energy counter at minute_ts."""
    return {
        "id": 0,
        "output": True,
        "apower": 118.4,
        "voltage": 231.2,
        "freq": 50.0,
        "current": 0.561,
        "aenergy": {
            "total": total_wh,
            "by_minute": [1973.333, 1973.333, 1960.0],
            "minute_ts": minute_ts,
        },
        "temperature": {"tC": 35.0, "tF": 95.0},
    }


def zigbee2mqtt_plug(energy_kwh: float = 3.41) -> dict[str, Any]:
    """A Zigbee2MQTT metering plug's state message."""
    return {
        "current": 0.05,
        "energy": energy_kwh,
        "linkquality": 98,
        "power": 9,
        "state": "ON",
        "voltage": 232,
    }


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
