"""`gronkoll collect` with MQTT, as a user runs it, against the real Mosquitto: nothing lost.

Live traffic must give what `gronkoll mqtt replay` gives for the same recorded messages. Then
the faults: the collector killed with SIGKILL in the middle of a stream of 10,000 QoS 1
messages and restarted, the broker restarted mid-stream, the broker away at start while SNMP
polling goes on, and a wrong password. The stream's payloads are plain numbers with no time
of their own (Shelly style): the hardest case for counting a resend once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from mqtt_traffic import (
    FIXTURES,
    SUBSCRIPTIONS,
    Publisher,
    Row,
    assert_each_once,
    energy_wh,
    forget_session,
    run,
    stored_count,
    stored_rows,
    wait_for,
    write_config,
)

from gronkoll.collector.routes import Routes
from gronkoll.settings import load_settings
from gronkoll.statedb import QuarantineEntry, StateDB

pytestmark = pytest.mark.integration

# The devices and subscriptions of the recorded sequences (tests/fixtures/mqtt/README.md).
DEVICES = """\
  - {id: plug-bibliotek-3, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: shellyplug-s-A1B2C3, site: skola1, kind: meter, rated_power_w: 2500}
  - {id: shellyplusplugs-a0b1c2d3e4f5, site: skola1, kind: meter, rated_power_w: 3500}
  - id: kontor-skrivare-2
    site: kommunhuset
    kind: meter
    rated_power_w: 3680
    mqtt: {topic: zigbee2mqtt/kontor/skrivare-2, format: zigbee2mqtt}
  - id: undercentral-1
    site: skola1
    kind: meter
    mqtt:
      topic: fastighet/skola1/el
      format: json
      json:
        fields:
          - {pointer: /el/effekt, field: power_w, scale: 1000}
          - {pointer: /el/energi, field: energy_wh_total, scale: 1000}
        time_pointer: /ts
  - {id: rum-1-effekt, site: skola1, kind: meter, mqtt: {topic: rum/1/effekt, format: number, field: power_w}}
  - {id: m7, site: kommunhuset, kind: meter}
  - {id: pc-0001, site: skola1, kind: pc}
  - {id: rum-aulan, site: skola1, kind: meeting_room}
  - {id: rum-b, site: kommunhuset, kind: meeting_room}
  - {id: plug-trasig, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: shellyplug-s-BAD001, site: skola1, kind: meter}
  - {id: pc-0002, site: skola1, kind: pc}
"""


def mqtt_section(broker: servers.Mosquitto, client_id: str, subscriptions: str, **more: Any) -> str:
    items = {"host": broker.host, "port": broker.port, "client_id": client_id, **more}
    head = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in items.items())
    return f"mqtt:\n{head}  reconnect_max_s: 1\n  subscriptions:\n{subscriptions}"


@pytest.fixture
def client_id(mosquitto: servers.Mosquitto) -> Iterator[str]:
    """A client id of this test's own; the broker forgets its session afterwards."""
    name = "gk-test-" + uuid.uuid4().hex[:8]
    yield name
    forget_session(mosquitto.port, name)


class Collector:
    """`gronkoll collect` as a service: a subprocess, its log in a file, stopped by signal."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.parent / "collect.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gronkoll.cli", "-c", str(self.config), "collect"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, count: int = 1) -> None:
        wait_for(lambda: self.log().count(text) >= count, f"{text!r} in the collector's log")

    def children(self) -> set[int]:
        """The collector's child processes."""
        assert self.proc is not None
        pids: set[int] = set()
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            pids.update(int(p) for p in (task / "children").read_text().split())
        return pids

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def alive(pid: int) -> bool:
    """Whether a process is still there (a zombie no longer counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    made: list[Collector] = []
    yield made
    for c in made:
        c.close()


# -- live traffic gives what a replay gives ----------------------------------------------------
def fixture_lines(name: str) -> list[dict[str, str]]:
    """The recorded messages; lines a replay skips as bad (not JSON, no t) are left out."""
    out = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and {"topic", "payload", "t"} <= set(item):
            out.append(item)
    return out


def by_device(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r.device, []).append(r)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "tasmota.jsonl",
        "shelly_gen1.jsonl",
        "shelly_gen2.jsonl",
        "zigbee2mqtt.jsonl",
        "json_number.jsonl",
        "agent.jsonl",
        "meetings.jsonl",
        "bad.jsonl",
    ],
)
def test_each_format_live_gives_what_a_replay_gives(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    client_id: str,
    name: str,
) -> None:
    live = write_config(
        tmp_path / "live", DEVICES, mqtt_section(mosquitto, client_id, SUBSCRIPTIONS)
    )
    code, out, err = run(capsys, live, "collect", "--once")  # makes the session
    assert code == 0 and "MQTT 127.0.0.1:" in out, err
    lines = fixture_lines(name)
    publisher = Publisher(mosquitto.port)
    publisher.publish_all((m["topic"], m["payload"]) for m in lines)
    publisher.close()
    code, out, err = run(capsys, live, "collect", "--once")
    assert code == 0, err
    routes = Routes(load_settings(live))  # what is subscribed to arrives; the rest does not
    arriving = sum(routes.match(m["topic"]) is not None for m in lines)
    assert f"{arriving} message{'s' if arriving != 1 else ''} in" in out, out

    replayed = write_config(
        tmp_path / "replay", DEVICES, "mqtt:\n  subscriptions:\n" + SUBSCRIPTIONS
    )
    code, _, err = run(capsys, replayed, "mqtt", "replay", str(FIXTURES / name))
    assert code == 0, err

    live_rows = by_device(stored_rows(load_settings(live).store_path))
    replay_rows = by_device(stored_rows(load_settings(replayed).store_path))
    assert set(live_rows) == set(replay_rows)
    for device, rows in replay_rows.items():
        mine = live_rows[device]
        assert Counter((r.field, r.value) for r in mine) == Counter(
            (r.field, r.value) for r in rows
        ), device
        if sorted(r.t for r in mine) == sorted(r.t for r in rows):  # the payload's own times
            assert energy_wh(mine) == energy_wh(rows), device

    def state_of(config: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        db = StateDB(load_settings(config).state_url)
        try:
            quarantine = sorted((q.topic, q.device_id, q.reason) for q in db.quarantined(limit=99))
            meetings = sorted(
                (m.room, m.meeting_id, m.started_at, m.ended_at, m.participants)
                for m in db.meetings()
            )
        finally:
            db.close()
        return quarantine, meetings

    assert state_of(live) == state_of(replayed)

    code, out, err = run(capsys, live, "devices", "--format", "json")
    assert code == 0, err
    shown = {d["id"]: d["mqtt"] for d in json.loads(out)["devices"] if d["mqtt"]}
    for device in live_rows:
        assert shown[device]["messages"] >= 1 and shown[device]["last_message"], device


def test_devices_shows_mqtt_devices_with_last_message_and_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mosquitto: servers.Mosquitto, client_id: str
) -> None:
    config = write_config(tmp_path, DEVICES, mqtt_section(mosquitto, client_id, SUBSCRIPTIONS))
    run(capsys, config, "collect", "--once")
    publisher = Publisher(mosquitto.port)
    publisher.publish_all(
        [
            ("rum/1/effekt", "120"),
            ("rum/1/effekt", "-5"),  # impossible: quarantined
            ("tele/plug-bibliotek-3/SENSOR", "not json"),
        ]
    )
    publisher.close()
    code, out, err = run(capsys, config, "collect", "--once")
    assert code == 0 and "3 messages in" in out and "2 quarantine entries" in out, out + err
    code, out, _ = run(capsys, config, "devices", "--format", "json")
    found = {d["id"]: d for d in json.loads(out)["devices"]}
    room = found["rum-1-effekt"]["mqtt"]
    assert room["topic"] == "rum/1/effekt" and room["format"] == "number"
    assert (room["messages"], room["quarantined"]) == (2, 1)
    assert room["last_message"] and room["last_topic"] == "rum/1/effekt"
    plug = found["plug-bibliotek-3"]["mqtt"]  # through a subscription: no topic of its own
    assert plug["topic"] is None and (plug["messages"], plug["quarantined"]) == (1, 1)
    assert found["m7"]["mqtt"] is None  # never sent anything
    assert found["undercentral-1"]["mqtt"]["messages"] == 0  # a topic, no message yet
    code, table, _ = run(capsys, config, "devices")
    assert "mqtt: last message " in table and "on rum/1/effekt; 2 messages, 1 quarantined" in table
    assert "mqtt: no message yet on fastighet/skola1/el (json)" in table


def test_collect_deletes_quarantine_entries_older_than_the_kept_days(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mosquitto: servers.Mosquitto, client_id: str
) -> None:
    mqtt = mqtt_section(mosquitto, client_id, SUBSCRIPTIONS, quarantine_keep_days=7)
    config = write_config(tmp_path, DEVICES, mqtt)
    now_ms = int(time.time() * 1000)
    state = StateDB(load_settings(config).state_url)
    entries = [
        QuarantineEntry(
            t_ms=now_ms - days * 86_400_000,
            topic="rum/1/effekt",
            device_id="rum-1-effekt",
            payload="-5",
            payload_bytes=2,
            reason=f"{days} days old",
        )
        for days in (8, 6)
    ]
    assert state.record_mqtt(entries, []) == (2, 0)
    code, out, err = run(capsys, config, "collect", "--once")
    assert code == 0, err
    assert [q.reason for q in state.quarantined()] == ["6 days old"]
    state.close()


# -- the stream: SIGKILL and a broker restart ---------------------------------------------------
STREAM_DEVICES = 500
STREAM_ROUNDS = 20


def stream_config(folder: Path, broker: servers.Mosquitto, client_id: str, prefix: str) -> Path:
    devices = "".join(
        f"  - {{id: m{i:03d}, site: skola1, kind: meter, rated_power_w: 1.0e9}}\n"
        for i in range(STREAM_DEVICES)
    )
    sub = (
        f'    - {{topic: "{prefix}/+/energi", format: number, device_level: 1, '
        "field: energy_wh_total}\n"
    )
    return write_config(folder, devices, mqtt_section(broker, client_id, sub))


def stream(prefix: str, rounds: range) -> list[tuple[str, str]]:
    """Each device's energy counter in Wh, 1000 + round, one round of every device at a time."""
    return [
        (f"{prefix}/m{i:03d}/energi", str(1000 + k)) for k in rounds for i in range(STREAM_DEVICES)
    ]


def stream_expected() -> dict[tuple[str, str], list[float]]:
    return {
        (f"m{i:03d}", "energy_wh_total"): [1000.0 + k for k in range(STREAM_ROUNDS)]
        for i in range(STREAM_DEVICES)
    }


def publish_in_background(
    port: int, messages: list[tuple[str, str]], pause_s: float = 0.0
) -> threading.Thread:
    """Publish 500 messages at a time, pause_s apart (a stream, not one burst)."""

    def publish() -> None:
        publisher = Publisher(port)
        for i in range(0, len(messages), 500):
            publisher.publish_all(messages[i : i + 500])
            time.sleep(pause_s)
        publisher.close()

    thread = threading.Thread(target=publish, name="publisher")
    thread.start()
    return thread


def test_a_collector_killed_mid_stream_stores_every_reading_exactly_once(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    client_id: str,
    collectors: list[Collector],
) -> None:
    prefix = "gk-kill-" + uuid.uuid4().hex[:6]
    config = stream_config(tmp_path, mosquitto, client_id, prefix)
    data = load_settings(config).store_path
    assert run(capsys, config, "collect", "--once")[0] == 0  # the session and subscription
    collector = Collector(config)
    collectors.append(collector)
    collector.start()
    total = STREAM_DEVICES * STREAM_ROUNDS
    # paced, so that the collector (faster than the stream) is killed while messages flow
    publisher = publish_in_background(
        mosquitto.port, stream(prefix, range(STREAM_ROUNDS)), pause_s=0.1
    )
    for kill_at in (total // 4, total * 3 // 5):
        wait_for(lambda n=kill_at: stored_count(data) >= n, f"{kill_at} readings stored")
        workers = collector.children()
        assert len(workers) == 1  # the commit worker, and nothing else
        collector.kill()  # SIGKILL: no clean-up at all, perhaps mid-commit
        # its commit worker ends with it rather than finish beside the next collector
        wait_for(lambda w=workers: not any(alive(pid) for pid in w), "the worker to end")
        collector.start()
    publisher.join()
    wait_for(lambda: stored_count(data) >= total, f"all {total} readings stored", 120)
    collector.wait_log("taking MQTT messages", 3)  # the last one is up, not starting
    assert collector.stop() == 0
    log = collector.log()
    assert "Traceback" not in log and log.count("resumed session") >= 2, log
    code, out, _ = run(capsys, config, "collect", "--once")
    assert code == 0 and " 0 messages in" in out  # everything was acknowledged

    rows = stored_rows(data)
    assert_each_once(rows, stream_expected())
    assert energy_wh(rows) == {f"m{i:03d}": STREAM_ROUNDS - 1.0 for i in range(STREAM_DEVICES)}


def test_a_broker_restarted_mid_stream_loses_nothing_and_is_reconnected_to(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    client_id: str,
    collectors: list[Collector],
) -> None:
    prefix = "gk-restart-" + uuid.uuid4().hex[:6]
    config = stream_config(tmp_path, mosquitto, client_id, prefix)
    data = load_settings(config).store_path
    assert run(capsys, config, "collect", "--once")[0] == 0
    collector = Collector(config)
    collectors.append(collector)
    collector.start()
    half = STREAM_ROUNDS // 2
    first = Publisher(mosquitto.port)
    first.publish_all(stream(prefix, range(half)))
    first.close()
    wait_for(lambda: stored_count(data) >= STREAM_DEVICES * 3, "a part of the stream stored")
    pid = mosquitto.pid
    mosquitto.restart()  # SIGTERM: the broker saves its sessions and queues, then starts again
    assert mosquitto.pid != pid
    second = Publisher(mosquitto.port)
    second.publish_all(stream(prefix, range(half, STREAM_ROUNDS)))
    second.close()
    total = STREAM_DEVICES * STREAM_ROUNDS
    wait_for(lambda: stored_count(data) >= total, f"all {total} readings stored", 120)
    assert collector.stop() == 0
    log = collector.log()
    assert log.count("lost the connection") == 1 and log.count("connected again after") == 1
    assert "Traceback" not in log
    rows = stored_rows(data)
    assert_each_once(rows, stream_expected())
    assert energy_wh(rows) == {f"m{i:03d}": STREAM_ROUNDS - 1.0 for i in range(STREAM_DEVICES)}


# -- starting -------------------------------------------------------------------------------------
def test_a_broker_away_at_start_is_retried_while_snmp_polling_goes_on(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    snmpd: servers.Snmpd,
    client_id: str,
    collectors: list[Collector],
) -> None:
    snmp = f"{{host: {snmpd.host}, port: {snmpd.port}, community: {snmpd.community}}}"
    devices = (
        f"  - {{id: srv-1, site: skola1, kind: server, profile: host-resources, snmp: {snmp}}}\n"
        "  - {id: rum-1-effekt, site: skola1, kind: meter, mqtt: {topic: rum/1/effekt, "
        "format: number, field: power_w}}\n"
    )
    config = write_config(
        tmp_path,
        devices,
        mqtt_section(
            mosquitto,
            client_id,
            '    - {topic: "unused/+", format: number, device_level: 1, field: power_w}\n',
        ),
        "collector: {jitter_s: 0}\n",
    )
    collector = Collector(config)
    collectors.append(collector)
    address = f"MQTT broker 127.0.0.1:{mosquitto.port}"
    with mosquitto.down():
        collector.start()
        collector.wait_log(f"{address}: cannot connect: Connection refused; retrying")
        collector.wait_log("first round done: 1 devices, 1 answered")  # SNMP goes on
    collector.wait_log("subscribed at QoS 1")
    publisher = Publisher(mosquitto.port)
    publisher.publish_all([("rum/1/effekt", "120")])
    publisher.close()
    data = load_settings(config).store_path
    wait_for(lambda: any(r.device == "rum-1-effekt" for r in stored_rows(data)), "the MQTT reading")
    assert collector.stop() == 0
    # The SNMP readings went through the MQTT commit worker, the store's one writer.
    assert any(r.device == "srv-1" for r in stored_rows(data))
    log = collector.log()
    assert log.count("cannot connect") == 1  # once per outage, however many attempts
    assert f"{address}: connected again after" in log and "Traceback" not in log


@pytest.mark.parametrize("once", [False, True], ids=["service", "once"])
def test_a_wrong_password_stops_collect_with_one_clear_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    client_id: str,
    once: bool,
) -> None:
    mqtt = mqtt_section(
        mosquitto,
        client_id,
        SUBSCRIPTIONS,
        port=mosquitto.auth_port,
        username=mosquitto.username,
        password="wrong-secret-42",
    )
    config = write_config(tmp_path, DEVICES, mqtt)
    code, out, err = run(capsys, config, "collect", *(["--once"] if once else []))
    assert code == 1, out + err
    line = err.strip()
    assert line == (
        f"gronkoll: MQTT broker 127.0.0.1:{mosquitto.auth_port} refused user "
        f"'{mosquitto.username}' (client id '{client_id}'): Not authorized; check "
        f"mqtt.username and mqtt.password, and the broker's ACL in {config}"
    ), line
    assert "wrong-secret-42" not in out + err and "Traceback" not in err
