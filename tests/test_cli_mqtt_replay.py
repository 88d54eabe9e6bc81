"""`gronkoll mqtt replay` and `gronkoll quarantine list`: recorded payloads to the energy a
user sees, quarantine with reasons, meetings per site, and replays that store nothing twice.

The recorded sequences are in tests/fixtures/mqtt (README.md there cites each format's
documentation). Every test replays through the command line and reads back through it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from mqtt_traffic import FIXTURES, SUBSCRIPTIONS, run, write_config

from gronkoll.settings import load_settings
from gronkoll.statedb import StateDB

DEVICES = """\
  # the shared examples
  - {id: plug-bibliotek-3, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: shellyplug-s-A1B2C3, site: skola1, kind: meter, rated_power_w: 2500}
  - {id: shellyplusplugs-a0b1c2d3e4f5, site: skola1, kind: meter, rated_power_w: 3500}
  - id: kontor-skrivare-2           # a friendly name with a slash: the device's own topic
    site: kommunhuset
    kind: meter
    rated_power_w: 3680
    mqtt: {topic: zigbee2mqtt/kontor/skrivare-2, format: zigbee2mqtt}
  # the recorded sequences
  - {id: plug-aula-1, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: plug-gammal-1, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: shellyplug-s-D4E5F6, site: skola1, kind: meter, rated_power_w: 2500}
  - {id: shellyplus1pm-c4d8d5a1b2c3, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: kaffebryggare, site: kommunhuset, kind: meter, rated_power_w: 3680}
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
        time_unit: iso
  - id: rum-1-effekt
    site: skola1
    kind: meter
    mqtt: {topic: rum/1/effekt, format: number, field: power_w}
  - {id: m7, site: kommunhuset, kind: meter}
  - {id: pc-0001, site: skola1, kind: pc}
  - {id: rum-aulan, site: skola1, kind: meeting_room}
  - {id: rum-b, site: kommunhuset, kind: meeting_room}
  # bad input
  - {id: plug-trasig, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: shellyplug-s-BAD001, site: skola1, kind: meter}
  - id: undercentral-2
    site: skola1
    kind: meter
    mqtt:
      topic: fastighet/skola2/el
      format: json
      json:
        fields:
          - {pointer: /el/effekt, field: power_w, scale: 1000}
          - {pointer: /el/energi, field: energy_wh_total, scale: 1000}
        time_pointer: /ts
  - {id: pc-0002, site: skola1, kind: pc}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, DEVICES, "mqtt:\n  subscriptions:\n" + SUBSCRIPTIONS)


def replay(capsys: pytest.CaptureFixture[str], config: Path, name: str) -> str:
    code, out, err = run(capsys, config, "mqtt", "replay", str(FIXTURES / name))
    assert code == 0, err
    return out


def energy_wh(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, float]:
    """What `report energy --by device --bucket none --format csv` says, in Wh per device."""
    code, out, err = run(
        capsys,
        config,
        "report",
        "energy",
        "--from",
        "2025-02-01",
        "--to",
        "2025-02-08",
        "--by",
        "device",
        "--bucket",
        "none",
        "--format",
        "csv",
    )
    assert code == 0, err
    rows = csv.DictReader(io.StringIO(out))
    return {r["key"]: round(float(r["energy_kwh"]) * 1000, 3) for r in rows}


def quarantine(capsys: pytest.CaptureFixture[str], config: Path) -> list[dict[str, object]]:
    code, out, err = run(capsys, config, "quarantine", "list", "--format", "json")
    assert code == 0, err
    items: list[dict[str, object]] = json.loads(out)
    return items


# The energy each recorded sequence gives, in Wh, per device; README.md there explains each.
SEQUENCES = [
    pytest.param("tasmota.jsonl", {"plug-bibliotek-3": 6.0}, id="tasmota"),
    pytest.param("shelly_gen1.jsonl", {"shellyplug-s-A1B2C3": 7.0}, id="shelly-gen1"),
    pytest.param("shelly_gen2.jsonl", {"shellyplusplugs-a0b1c2d3e4f5": 9.867}, id="shelly-gen2"),
    pytest.param("zigbee2mqtt.jsonl", {"kontor-skrivare-2": 10.0}, id="zigbee2mqtt-slash-name"),
    pytest.param(
        "tasmota_reset_rollover.jsonl", {"plug-aula-1": 27.0}, id="tasmota-reset-rollover"
    ),
    pytest.param("tasmota_old_firmware.jsonl", {"plug-gammal-1": 10.0}, id="tasmota-no-period"),
    pytest.param(
        "shelly_gen1_reboot.jsonl", {"shellyplug-s-D4E5F6": 14.0}, id="shelly-gen1-reboot"
    ),
    pytest.param(
        "shelly_gen2_notify.jsonl", {"shellyplus1pm-c4d8d5a1b2c3": 2.947}, id="shelly-gen2-partial"
    ),
    pytest.param("zigbee2mqtt_fleet.jsonl", {"kaffebryggare": 100.0}, id="zigbee2mqtt-fleet"),
    pytest.param(
        "json_number.jsonl",
        {"undercentral-1": 300.0, "rum-1-effekt": 22.5, "m7": 250.0},
        id="json-and-number",
    ),
    pytest.param("agent.jsonl", {"pc-0001": 16.25}, id="gronkoll-agent"),
]


@pytest.mark.parametrize(("name", "expected"), SEQUENCES)
def test_a_recorded_sequence_gives_the_energy_its_readme_states(
    capsys: pytest.CaptureFixture[str], config: Path, name: str, expected: dict[str, float]
) -> None:
    out = replay(capsys, config, name)
    assert "0 quarantined" in out, out
    assert energy_wh(capsys, config) == expected


@pytest.mark.parametrize(("name", "expected"), SEQUENCES)
def test_replaying_a_file_again_stores_nothing_new(
    capsys: pytest.CaptureFixture[str], config: Path, name: str, expected: dict[str, float]
) -> None:
    replay(capsys, config, name)
    again = replay(capsys, config, name)
    assert "Stored 0 readings" in again, again
    assert energy_wh(capsys, config) == expected


def test_tasmota_redelivery_and_reset_are_read_from_period_and_time(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    out = replay(capsys, config, "tasmota_reset_rollover.jsonl")
    # seven messages, one a redelivery: its readings repeat their Time and are dropped
    assert "7 messages: 7 accepted" in out
    assert "(6 dropped: already stored, or older than what is)" in out, out
    code, events, _ = run(capsys, config, "events", "--device", "plug-aula-1")
    assert "rejected" not in events and "reset" not in events


def test_a_shelly_gen1_reboot_counts_from_zero_without_a_spike(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    out = replay(capsys, config, "shelly_gen1_reboot.jsonl")
    assert "4 x not a relay power or energy topic" in out, out
    code, events, _ = run(capsys, config, "events", "--device", "shellyplug-s-D4E5F6")
    assert "reset: energy_wh_total reset from 1670.67 to 2" in events, events
    assert "rejected" not in events


def test_a_shelly_gen1_second_relay_counts_as_a_device_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # docs/mqtt.md: relay 0 is the device's own; another relay is counted when it is
    # configured as a device with its own energy topic, in watt-minutes through `number`.
    channel = """\
  - id: ventilation-2
    site: skola1
    kind: meter
    mqtt: {topic: "shellies/shellyswitch25-AB12/relay/1/energy", format: number,
           field: energy_wh_total, scale: 0.016666666666666666}
  - {id: shellyswitch25-AB12, site: skola1, kind: meter}
"""
    config = write_config(tmp_path, DEVICES + channel, "mqtt:\n  subscriptions:\n" + SUBSCRIPTIONS)
    lines = [
        (topic, payload, f"2025-02-03T09:0{i}:00Z")
        for i, (topic, payload) in enumerate(
            [
                ("shellies/shellyswitch25-AB12/relay/0/energy", "1200"),
                ("shellies/shellyswitch25-AB12/relay/1/energy", "6000"),
                ("shellies/shellyswitch25-AB12/relay/0/energy", "1500"),
                ("shellies/shellyswitch25-AB12/relay/1/energy", "7200"),
                ("shellies/shellyswitch25-AB12/relay/1/energy", "60"),  # rebooted
                ("shellies/shellyswitch25-AB12/relay/1/energy", "660"),
            ]
        )
    ]
    capture = tmp_path / "two-relays.jsonl"
    capture.write_text(
        "".join(json.dumps({"topic": t, "payload": p, "t": at}) + "\n" for t, p, at in lines),
        encoding="utf-8",
    )
    code, out, err = run(capsys, config, "mqtt", "replay", str(capture))
    assert code == 0 and "6 accepted" in out, out + err
    energy = energy_wh(capsys, config)
    assert energy["shellyswitch25-AB12"] == pytest.approx(5.0)  # relay 0: 300 Wmin
    assert energy["ventilation-2"] == pytest.approx(20.0 + 11.0)  # 1200 Wmin, then 660 after


def test_the_agent_last_will_and_a_retained_redelivery_add_nothing(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    out = replay(capsys, config, "agent.jsonl")
    assert "1 x the agent's last will (offline)" in out, out
    assert "7 messages: 6 accepted, 0 quarantined, 1 ignored" in out


def test_meetings_are_stored_with_participants_per_site(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    out = replay(capsys, config, "meetings.jsonl")
    assert "3 meeting events" in out, out
    replay(capsys, config, "meetings.jsonl")  # again: the same two meetings
    state = StateDB(load_settings(config).state_url)
    try:
        meetings = {m.meeting_id: m for m in state.meetings()}
    finally:
        state.close()
    assert set(meetings) == {"m-2025-02-03-1", "m-2025-02-03-2"}
    first, second = meetings["m-2025-02-03-1"], meetings["m-2025-02-03-2"]
    assert first.room == "rum-aulan"
    assert (
        first.started_at is not None and first.started_at.isoformat() == "2025-02-03T08:00:00+00:00"
    )
    assert first.ended_at is not None and first.ended_at.isoformat() == "2025-02-03T09:00:00+00:00"
    assert first.participants_by_site == {"skola1": 6, "kommunhuset": 2}  # most seen per site
    assert second.room == "rum-b" and second.started_at is None  # an end without its start
    assert second.participants_by_site == {"kommunhuset": 3}


def test_bad_payloads_are_quarantined_with_their_reasons_and_good_values_kept(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    out = replay(capsys, config, "bad.jsonl")
    assert (
        "9 messages: 5 accepted (4 of them with values quarantined), 3 quarantined, 1 ignored"
        in out
    ), out
    assert "line 10: not JSON" in out
    assert "line 11: missing 't'" in out
    assert "topics without a mapping: okand/topic" in out
    reasons = {(q["device"], q["reason"]) for q in quarantine(capsys, config)}
    assert reasons == {
        ("plug-trasig", "ENERGY.Power: -5 W: power_w cannot be negative"),
        ("plug-trasig", 'ENERGY.Voltage: "abc" is not a number'),
        (
            "plug-trasig",
            "payload is not JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
        ("shellyplug-s-BAD001", 'relay/0/power: "n/a" is not a number'),
        ("undercentral-2", "/el/energi: no value there (expected energy_wh_total)"),
        ("pc-0002", 'state: "hibernate" is not one of on, idle, sleep, off'),
        ("plug-okand", "device 'plug-okand' is not configured"),
        ("rum-aulan", "participants: the count for site 'skola1' must be a whole number >= 0"),
    }
    # the good values of the same messages are stored: Period, power, user presence
    assert energy_wh(capsys, config) == {"plug-trasig": 6.0}
    code, table, _ = run(capsys, config, "report", "power", "--by", "device", "--format", "csv")
    assert code == 0


def test_quarantine_keeps_no_names_from_a_gronkoll_message(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    replay(capsys, config, "bad.jsonl")
    kept = json.dumps(quarantine(capsys, config), ensure_ascii=False)
    assert "Anna" not in kept and "Bo Berg" not in kept
    assert '\\"organizer\\": \\"<dropped>\\"' in kept


def test_quarantine_list_shows_the_newest_first(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    replay(capsys, config, "bad.jsonl")
    items = quarantine(capsys, config)
    assert [q["time"] for q in items] == sorted((q["time"] for q in items), reverse=True)
    assert items[0]["topic"] == "gronkoll/meeting/rum-aulan"
    assert items[0]["time"] == "2025-02-03T11:12+01:00"
    code, table, _ = run(capsys, config, "quarantine", "list", "--limit", "2")
    lines = table.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[1].startswith("2025-02-03T11:10+01:00  plug-okand  tele/plug-okand/SENSOR  ")
    assert "device 'plug-okand' is not configured  payload: {" in lines[1]
    assert lines[1].endswith("...")  # the payload cut to fit a line


def test_replaying_bad_input_twice_keeps_each_quarantine_entry_once(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    replay(capsys, config, "bad.jsonl")
    first = quarantine(capsys, config)
    replay(capsys, config, "bad.jsonl")
    assert quarantine(capsys, config) == first


def test_an_empty_quarantine_says_so(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(capsys, config, "quarantine", "list")
    assert (code, out) == (0, "No quarantined messages.\n")


def test_a_file_that_cannot_be_read_is_an_error(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, config, "mqtt", "replay", str(tmp_path / "none.jsonl"))
    assert code == 1 and "none.jsonl: cannot read" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    code, out, err = run(capsys, config, "mqtt", "replay", str(empty))
    assert code == 1 and "0 messages" in out


def test_a_bad_mapping_stops_replay_with_the_key_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    subscriptions = SUBSCRIPTIONS.replace(
        '{topic: "matare/+/energi", format: number, device_level: 1,',
        '{topic: "matare/+/energi", format: number, device_level: 0,',
    )
    path = write_config(tmp_path, DEVICES, "mqtt:\n  subscriptions:\n" + subscriptions)
    code, _, err = run(capsys, path, "mqtt", "replay", str(FIXTURES / "tasmota.jsonl"))
    assert code == 2
    assert "mqtt.subscriptions[5]: device_level 0 is the fixed level 'matare'" in err
