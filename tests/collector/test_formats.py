"""Each payload format's decoder, on payloads written to its project's documentation.

The payloads below follow tests/fixtures/mqtt/README.md's sources; each case states the
readings (field, time, value) and the problems a user would see in the quarantine.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mqtt_traffic import shelly_gen2_status, tasmota_payload, zigbee2mqtt_plug

from gronkoll.collector.formats import FORMATS, Decoded, Input
from gronkoll.collector.formats.base import payload_text, resolve_pointer
from gronkoll.collector.formats.times import local_time_ms
from gronkoll.collector.messages import Message, MessagePipeline
from gronkoll.settings import MqttFormat, MqttMapping, Settings, parse_settings

SETTINGS = parse_settings(
    {
        "municipality": {"name": "Exempelby", "timezone": "Europe/Stockholm"},
        "sites": [{"id": "skola1"}, {"id": "kommunhuset"}],
        "devices": [{"id": "dev-1", "site": "skola1", "kind": "meter"}],
    },
    Path("gronkoll.yaml"),
)
RECEIVED = "2025-02-03T09:15:00Z"


def ms(text: str) -> int:
    """An ISO 8601 time as ms since the epoch."""
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def decode(
    fmt: str,
    topic: str,
    payload: object,
    *,
    received: str = RECEIVED,
    mapping: dict[str, Any] | None = None,
    device: str | None = "dev-1",
    settings: Settings = SETTINGS,
) -> Decoded:
    data = payload if isinstance(payload, bytes) else None
    if data is None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = text.encode()
    return FORMATS[fmt].decode(
        Input(
            topic=topic,
            data=data,
            received_ms=ms(received),
            mapping=MqttMapping.model_validate({"format": fmt, **(mapping or {})}),
            device=device,
            settings=settings,
            state={},
        )
    )


def test_every_format_the_config_accepts_has_a_decoder() -> None:
    assert set(FORMATS) == set(get_args(MqttFormat))


# -- Tasmota ----------------------------------------------------------------------------
TASMOTA = tasmota_payload()
AT_0915 = ms("2025-02-03T09:15:00Z")


def test_tasmota_reads_period_as_energy_and_keeps_total_as_the_meters_figure() -> None:
    out = decode("tasmota", "tele/plug/SENSOR", TASMOTA, received="2025-02-03T09:15:07Z")
    assert out.problems == []
    # Time is local (Stockholm, UTC+1 in February) and is the reading time, not the receipt
    assert sorted(out.readings) == sorted(
        [
            ("energy_wh", AT_0915, 6.0),
            ("energy_wh_meter", AT_0915, 87512.0),
            ("power_w", AT_0915, 71.0),
            ("apparent_power_va", AT_0915, 82.0),
            ("current_a", AT_0915, 0.358),
            ("voltage_v", AT_0915, 229.0),
        ]
    )


def test_tasmota_without_period_reads_total_as_the_counter() -> None:
    energy = dict(TASMOTA["ENERGY"])
    del energy["Period"]
    out = decode("tasmota", "tele/plug/SENSOR", {"Time": TASMOTA["Time"], "ENERGY": energy})
    assert ("energy_wh_total", AT_0915, 87512.0) in out.readings
    assert not any(f in ("energy_wh", "energy_wh_meter") for f, _, _ in out.readings)


def test_tasmota_sums_the_channels_of_a_two_channel_device() -> None:
    # Sonoff Dual R3 style: one value per channel (Tasmota issue #18385 shows the shape)
    out = decode(
        "tasmota",
        "tele/dual/SENSOR",
        tasmota_payload(
            Total=[0.0, 2.91], Period=[1, 2], Power=[10, 20], Voltage=[230, 231], Current=[0.1, 0.2]
        ),
    )
    values = {f: v for f, _, v in out.readings}
    assert values["energy_wh"] == 3 and values["energy_wh_meter"] == 2910
    assert values["power_w"] == 30 and values["voltage_v"] == 230
    assert values["current_a"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("payload", "problems", "fields"),
    [
        (tasmota_payload(Power=-5), ["ENERGY.Power: -5 W: power_w cannot be negative"], 5),
        (tasmota_payload(Voltage="abc"), ['ENERGY.Voltage: "abc" is not a number'], 5),
        (tasmota_payload(Period=None), ["ENERGY.Period: null is not a number"], 5),
        (tasmota_payload(Current=[0.1, "x"]), ['ENERGY.Current: [0.1, "x"] is not a number'], 5),
        (
            {"Time": "2025-02-03T10:15:00"},
            ["no ENERGY object in the payload (is power monitoring enabled?)"],
            0,
        ),
        (
            {"Time": "2025-02-03T10:15:00", "ENERGY": {"Power": 5}},
            ["ENERGY has neither Period nor Total: no energy in this message"],
            1,
        ),
        (
            "{not json",
            [
                "payload is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
            ],
            0,
        ),
        ("[1, 2]", ["payload is JSON but not an object: [1, 2]"], 0),
        (b"\xff\xfe", ["payload is not UTF-8 text"], 0),
    ],
)
def test_tasmota_quarantines_what_it_cannot_use_and_keeps_the_rest(
    payload: object, problems: list[str], fields: int
) -> None:
    out = decode("tasmota", "tele/plug/SENSOR", payload)
    assert out.problems == problems
    assert len(out.readings) == fields


def test_tasmota_times_with_an_offset_and_unset_clocks() -> None:
    with_offset = decode(
        "tasmota", "tele/p/SENSOR", {**TASMOTA, "Time": "2025-02-03T10:15:00+01:00"}
    )
    assert {t for _, t, _ in with_offset.readings} == {AT_0915}
    unset = decode("tasmota", "tele/p/SENSOR", {**TASMOTA, "Time": "1970-01-01T00:02:13"})
    assert unset.problems == [
        "Time: device time 1969-12-31T23:02:13+00:00 is not believable; used the receive time"
    ]
    assert {t for _, t, _ in unset.readings} == {ms(RECEIVED)}
    ahead = decode("tasmota", "tele/p/SENSOR", {**TASMOTA, "Time": "2025-02-03T11:15:00"})
    assert "is not believable" in ahead.problems[0]


def test_tasmota_ignores_its_other_topics_and_names_the_device_by_its_topic() -> None:
    out = decode("tasmota", "tele/plug/STATE", {"Time": "2025-02-03T10:15:00", "POWER": "ON"})
    assert out.ignored and not out.readings and not out.problems
    device = FORMATS["tasmota"].device_from_topic
    assert device("tele/plug-1/SENSOR") == device("plug-1/tele/SENSOR") == "plug-1"


# -- Shelly Gen1 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topic", "payload", "reading"),
    [
        ("shellies/plug/relay/0/power", "42.10", ("power_w", 42.1)),
        ("shellies/plug/relay/0/energy", "360420", ("energy_wh_total", 6007.0)),
        ("shellies/sw25/relay/1/power", "10", ("power_w[1]", 10.0)),
    ],
)
def test_shelly_gen1_reads_power_and_watt_minutes(
    topic: str, payload: str, reading: tuple[str, float]
) -> None:
    out = decode("shelly-gen1", topic, payload)
    assert out.readings == [(reading[0], ms(RECEIVED), reading[1])]


@pytest.mark.parametrize(
    "topic",
    [
        "shellies/plug/relay/0",
        "shellies/plug/online",
        "shellies/announce",
        "shellies/plug/temperature",
    ],
)
def test_shelly_gen1_ignores_topics_without_power_or_energy(topic: str) -> None:
    out = decode("shelly-gen1", topic, "on")
    assert out.ignored and not out.problems


def test_shelly_gen1_quarantines_a_value_that_is_not_a_number_or_negative() -> None:
    assert decode("shelly-gen1", "shellies/p/relay/0/power", "n/a").problems == [
        'relay/0/power: "n/a" is not a number'
    ]
    assert decode("shelly-gen1", "shellies/p/relay/0/energy", "-60").problems == [
        "relay/0/energy: -1 Wh: energy_wh_total cannot be negative"
    ]


# -- Shelly Gen2 ------------------------------------------------------------------------
def test_shelly_gen2_status_reads_every_metering_field_and_the_counter_at_minute_ts() -> None:
    status = shelly_gen2_status()
    out = decode("shelly-gen2", "plug/status/switch:0", status, received="2025-02-03T09:00:03Z")
    got = {f: (t, v) for f, t, v in out.readings}
    assert got["energy_wh_total"] == (ms("2025-02-03T09:00:00Z"), 5120.402)
    assert got["power_w"] == (ms("2025-02-03T09:00:03Z"), 118.4)
    assert set(got) == {
        "energy_wh_total",
        "power_w",
        "voltage_v",
        "frequency_hz",
        "current_a",
        "temperature_c",
    }


def notify(components: dict[str, object], method: str = "NotifyStatus") -> dict[str, object]:
    return {
        "src": "p",
        "dst": "p/events",
        "method": method,
        "params": {"ts": 1738573221.3, **components},
    }


@pytest.mark.parametrize(
    ("components", "readings"),
    [
        ({"switch:0": {"id": 0, "apower": 110.5}}, [("power_w", 110.5)]),
        (
            {"switch:0": {"id": 0, "current": 0.48, "voltage": 229.8}},
            [("current_a", 0.48), ("voltage_v", 229.8)],
        ),
        ({"pm1:0": {"id": 0, "apower": 3.5}}, [("power_w", 3.5)]),
        ({"switch:1": {"id": 1, "apower": 7}}, [("power_w[1]", 7.0)]),
        ({"switch:0": {"id": 0, "apower": None, "aenergy": None}}, []),  # null: left the status
    ],
)
def test_shelly_gen2_partial_notify_status_reads_only_what_is_there(
    components: dict[str, object], readings: list[tuple[str, float]]
) -> None:
    out = decode("shelly-gen2", "p/events/rpc", notify(components))
    assert out.problems == []
    assert sorted((f, v) for f, _, v in out.readings) == readings
    assert {t for _, t, _ in out.readings} <= {1738573221300}


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (notify({}, method="NotifyEvent"), "NotifyEvent: no status in it"),
        (notify({"switch:0": {"id": 0, "output": False}}), "NotifyStatus without metering fields"),
        (notify({"wifi": {"rssi": -60}}), "NotifyStatus without metering fields"),
        ({"id": 1, "result": {}}, "an RPC message: no status in it"),
    ],
)
def test_shelly_gen2_ignores_notifications_without_metering(payload: object, why: str) -> None:
    out = decode("shelly-gen2", "p/events/rpc", payload)
    assert (out.ignored, out.readings, out.problems) == (why, [], [])


def test_shelly_gen2_quarantines_negative_power_and_a_counter_without_total() -> None:
    out = decode(
        "shelly-gen2",
        "p/events/rpc",
        notify({"switch:0": {"apower": -3, "aenergy": {"by_minute": []}}}),
    )
    assert out.problems == [
        "switch:0.apower: -3 W: power_w cannot be negative",
        "switch:0.aenergy has no total",
    ]


def test_shelly_gen2_names_the_device_by_its_prefix() -> None:
    device = FORMATS["shelly-gen2"].device_from_topic
    assert device("shellyplus1pm-abc/status/switch:0") == "shellyplus1pm-abc"
    assert device("hus/b/plug-3/events/rpc") == "hus/b/plug-3"


# -- Zigbee2MQTT ------------------------------------------------------------------------
def test_zigbee2mqtt_reads_a_plug_and_last_seen() -> None:
    state = zigbee2mqtt_plug()
    out = decode("zigbee2mqtt", "zigbee2mqtt/kontor/skrivare-2", state)
    assert sorted((f, v) for f, _, v in out.readings) == [
        ("current_a", 0.05),
        ("energy_wh_total", 3410.0),
        ("power_w", 9.0),
        ("voltage_v", 232.0),
    ]
    seen = decode("zigbee2mqtt", "zigbee2mqtt/x", {"power": 1, "last_seen": 1738573200000})
    assert seen.readings == [("power_w", 1738573200000, 1.0)]


@pytest.mark.parametrize(
    "topic",
    [
        "zigbee2mqtt/bridge/state",
        "zigbee2mqtt/plug/availability",
        "zigbee2mqtt/plug/set",
        "zigbee2mqtt/plug/set/state",
    ],
)
def test_zigbee2mqtt_ignores_bridge_availability_and_commands(topic: str) -> None:
    assert decode("zigbee2mqtt", topic, {"state": "online"}).ignored


def test_zigbee2mqtt_skips_attributes_not_reported_yet_and_ignores_non_plugs() -> None:
    assert decode("zigbee2mqtt", "zigbee2mqtt/p", {"power": 5, "energy": None}).readings == [
        ("power_w", ms(RECEIVED), 5.0)
    ]
    button = decode("zigbee2mqtt", "zigbee2mqtt/knapp", {"action": "single", "battery": 90})
    assert button.ignored and not button.problems
    assert (
        FORMATS["zigbee2mqtt"].device_from_topic("zigbee2mqtt/kontor/skrivare-2")
        == "kontor/skrivare-2"
    )


# -- json and number --------------------------------------------------------------------
JSON_MAPPING = {
    "json": {
        "fields": [
            {"pointer": "/el/effekt", "field": "power_w", "scale": 1000},
            {"pointer": "/el/energi", "field": "energy_wh_total", "scale": 1000},
            {"pointer": "/a~1b/0", "field": "voltage_v"},
            {"pointer": "/läge", "field": "state"},
        ],
        "time_pointer": "/ts",
        "time_unit": "s",
    }
}


def test_json_reads_pointers_scales_and_the_time_field() -> None:
    payload = {
        "el": {"effekt": 1.2, "energi": "1520.25"},
        "a/b": [230.5],
        "läge": "Idle",
        "ts": 1738573200,
    }
    out = decode("json", "fastighet/el", payload, mapping=JSON_MAPPING)
    t = ms("2025-02-03T09:00:00Z")
    assert out.problems == []
    assert sorted(out.readings) == sorted(
        [
            ("power_w", t, 1200.0),
            ("energy_wh_total", t, 1520250.0),
            ("voltage_v", t, 230.5),
            ("state", t, 1.0),
        ]
    )


def test_json_quarantines_a_missing_pointer_and_a_bad_time_but_keeps_the_rest() -> None:
    out = decode("json", "f/el", {"el": {"effekt": 2.5}, "ts": "igår"}, mapping=JSON_MAPPING)
    assert out.problems == [
        "/ts: 'igår' is not a Unix time",
        "/el/energi: no value there (expected energy_wh_total)",
        "/a~1b/0: no value there (expected voltage_v)",
        "/läge: no value there (expected state)",
    ]
    assert out.readings == [("power_w", ms(RECEIVED), 2500.0)]


@pytest.mark.parametrize(
    ("mapping", "payload", "expected"),
    [
        ({"field": "power_w"}, " 412.5\n", [("power_w", 412.5)]),
        ({"field": "energy_wh_total", "scale": 1000}, "40.25", [("energy_wh_total", 40250.0)]),
        ({"field": "state"}, "sleep", [("state", 2.0)]),
        ({"field": "temperature_c"}, "-4.5", [("temperature_c", -4.5)]),  # may be below zero
    ],
)
def test_number_reads_one_value_per_topic(
    mapping: dict[str, Any], payload: str, expected: list[tuple[str, float]]
) -> None:
    out = decode("number", "rum/1/x", payload, mapping=mapping)
    assert [(f, v) for f, _, v in out.readings] == expected


def test_number_quarantines_what_is_not_a_number_or_impossible() -> None:
    assert decode("number", "r", "on", mapping={"field": "power_w"}).problems == [
        'payload: "on" is not a number'
    ]
    assert decode("number", "r", "nan", mapping={"field": "power_w"}).problems == [
        "payload: nan W: not a finite number"
    ]
    assert decode("number", "r", "-1", mapping={"field": "power_w"}).problems == [
        "payload: -1 W: power_w cannot be negative"
    ]


def test_pointers_follow_rfc_6901() -> None:
    doc = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "m~n": 8, " ": 7}
    assert resolve_pointer(doc, "/foo/0") == (True, "bar")
    assert resolve_pointer(doc, "/") == (True, 0)
    assert resolve_pointer(doc, "/a~1b") == (True, 1)
    assert resolve_pointer(doc, "/m~0n") == (True, 8)
    assert resolve_pointer(doc, "/ ") == (True, 7)
    assert resolve_pointer(doc, "/foo/01") == (False, None)
    assert resolve_pointer(doc, "/foo/2") == (False, None)
    assert resolve_pointer(doc, "/foo/-") == (False, None)


# -- Gronkoll's agent and meeting messages ----------------------------------------------
AGENT = {
    "v": 1,
    "state": "idle",
    "idle_s": 840,
    "user_present": True,
    "agent": "1.2.0",
    "t": "2025-02-03T08:10:00+01:00",
}


def test_the_agent_message_gives_state_and_presence_at_its_time() -> None:
    out = decode("gronkoll-agent", "gronkoll/agent/pc-1/state", AGENT)
    t = ms("2025-02-03T07:10:00Z")
    assert (out.readings, out.problems) == ([("state", t, 1.0), ("user_present", t, 1.0)], [])


@pytest.mark.parametrize(
    ("change", "problems", "readings"),
    [
        ({"state": "hibernate"}, ['state: "hibernate" is not one of on, idle, sleep, off'], 1),
        ({"user_present": "anna"}, ["user_present: must be true or false"], 1),
        ({"idle_s": -3}, ["idle_s: must be a number of seconds, 0 or more"], 2),
        ({"v": 2}, ["v: 2 is not a schema version this Gronkoll reads (1)"], 0),
        ({"t": "soon"}, ["t: 'soon' is not an ISO 8601 time; used the receive time"], 2),
    ],
)
def test_a_bad_agent_message_is_quarantined_and_its_good_values_kept(
    change: dict[str, object], problems: list[str], readings: int
) -> None:
    out = decode("gronkoll-agent", "gronkoll/agent/pc-1/state", {**AGENT, **change})
    assert (out.problems, len(out.readings)) == (problems, readings)


def test_the_agents_last_will_reads_nothing_and_a_quarantined_agent_keeps_no_names() -> None:
    assert decode("gronkoll-agent", "a", "offline").ignored
    kept = FORMATS["gronkoll-agent"].redact(json.dumps({**AGENT, "user": "anna.a"}).encode())
    assert "anna" not in kept and '"user": "<dropped>"' in kept
    assert "not kept" in FORMATS["gronkoll-agent"].redact(b"anna.a logged in")


MEETING = {
    "v": 1,
    "event": "started",
    "meeting_id": "m-1",
    "room": "dev-1",
    "t": "2025-02-03T09:00:00+01:00",
    "participants": {"skola1": 5, "kommunhuset": 2},
}


def test_a_meeting_event_gives_a_meeting_and_a_participants_reading() -> None:
    out = decode("gronkoll-meeting", "gronkoll/meeting/dev-1", MEETING)
    assert out.problems == []
    (event,) = out.meetings
    assert (event.room, event.meeting_id, event.event) == ("dev-1", "m-1", "started")
    assert (event.t_ms, dict(event.participants)) == (
        ms("2025-02-03T08:00:00Z"),
        {"skola1": 5, "kommunhuset": 2},
    )
    assert out.readings == [("participants", event.t_ms, 7.0)]
    ended = decode("gronkoll-meeting", "m", {**MEETING, "event": "ended"}, device=None)
    assert ended.device == "dev-1" and ended.readings == [("participants", event.t_ms, 0.0)]


@pytest.mark.parametrize(
    ("change", "problems", "meetings"),
    [
        (
            {"participants": {"skola9": 3}},
            ["participants: unknown site 'skola9' (known: kommunhuset, skola1)"],
            1,
        ),
        (
            {"participants": {"skola1": ["Anna"]}},
            ["participants: the count for site 'skola1' must be a whole number >= 0"],
            1,
        ),
        (
            {"participants": {"skola1": True}},
            ["participants: the count for site 'skola1' must be a whole number >= 0"],
            1,
        ),
        ({"room": "dev-2"}, ["room: 'dev-2' is not the topic's device 'dev-1'"], 0),
        ({"event": "paused"}, ["event: 'paused' is not started or ended"], 0),
        ({"meeting_id": ""}, ["meeting_id: must be text of 1 to 128 characters"], 0),
    ],
)
def test_a_bad_meeting_event_is_quarantined(
    change: dict[str, object], problems: list[str], meetings: int
) -> None:
    out = decode("gronkoll-meeting", "gronkoll/meeting/dev-1", {**MEETING, **change})
    assert (out.problems, len(out.meetings)) == (problems, meetings)


def test_a_meeting_without_a_room_anywhere_is_quarantined() -> None:
    payload = {k: v for k, v in MEETING.items() if k != "room"}
    out = decode("gronkoll-meeting", "gronkoll/meetings", payload, device=None)
    assert out.problems == ["no room: neither the topic nor the payload names the room's device"]


# -- times and payload text -------------------------------------------------------------
STOCKHOLM = SETTINGS.tz


@pytest.mark.parametrize(
    ("local", "received", "expected"),
    [
        # 2025-10-26 02:30 happens twice in Stockholm: first in CEST, then in CET
        ("2025-10-26T02:30:00", "2025-10-26T00:31:00Z", "2025-10-26T00:30:00Z"),
        ("2025-10-26T02:30:00", "2025-10-26T01:31:00Z", "2025-10-26T01:30:00Z"),
        # 2025-03-30 02:30 never happens there; the reading nearest the receipt is taken
        ("2025-03-30T02:30:00", "2025-03-30T00:31:00Z", "2025-03-30T00:30:00Z"),
        ("2025-02-03T10:15:00", "2025-02-03T09:15:00Z", "2025-02-03T09:15:00Z"),
        ("2025-02-03T10:15:00Z", "2025-02-03T09:15:00Z", "2025-02-03T10:15:00Z"),
    ],
)
def test_device_local_times_across_daylight_saving_changes(
    local: str, received: str, expected: str
) -> None:
    assert local_time_ms(local, STOCKHOLM, ms(received)) == ms(expected)


@pytest.mark.parametrize(
    ("minute_ts", "problem"),
    [
        (1e300, "switch:0.aenergy.minute_ts: 1e+300 is not a Unix time"),
        (
            -1e11,
            "switch:0.aenergy.minute_ts: device time -100000000000000 ms after 1970 is not "
            "believable; used the receive time",
        ),
        ("NaN", "switch:0.aenergy.minute_ts: 'NaN' is not a Unix time"),
    ],
)
def test_times_far_out_of_range_are_problems_not_crashes(minute_ts: object, problem: str) -> None:
    status = {"aenergy": {"total": 1.0, "minute_ts": minute_ts}}
    out = decode("shelly-gen2", "p/status/switch:0", status)
    assert out.problems == [problem]
    assert out.readings == [("energy_wh_total", ms(RECEIVED), 1.0)]


def test_json_nested_too_deep_is_a_problem_not_a_crash() -> None:
    out = decode("tasmota", "tele/p/SENSOR", "[" * 100_000 + "]" * 100_000)
    assert out.problems == ["payload is JSON nested too deep to read"]


def test_a_quarantined_payload_is_cut_to_4_kib() -> None:
    text = payload_text(b"x" * 10_000)
    assert len(text.encode()) == 4096


# -- never raises -----------------------------------------------------------------------
FUZZ_SETTINGS = parse_settings(
    {
        "municipality": {"name": "x"},
        "sites": [{"id": "skola1"}],
        "devices": [{"id": f"d-{name}", "site": "skola1", "kind": "meter"} for name in FORMATS],
        "mqtt": {
            "subscriptions": [
                {"topic": f"{name}/+/#", "format": name, "device_level": 1}
                | ({"field": "power_w"} if name == "number" else {})
                | (
                    {
                        "json": {
                            "fields": [{"pointer": "/a/0", "field": "power_w"}],
                            "time_pointer": "/t",
                        }
                    }
                    if name == "json"
                    else {}
                )
                for name in FORMATS
            ]
        },
    },
    Path("gronkoll.yaml"),
)
KEYS = st.sampled_from(
    ["Time", "ENERGY", "Period", "Total", "Power", "Voltage", "params", "method", "ts", "switch:0",
     "aenergy", "total", "minute_ts", "apower", "power", "energy", "last_seen", "a", "t", "v",
     "state", "user_present", "event", "meeting_id", "room", "participants", "skola1"]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["NotifyStatus", "started", "on", "2025-02-03T10:15:00", "1e400"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
TOPIC_TAILS = st.sampled_from(["SENSOR", "relay/0/energy", "status/switch:0", "events/rpc", "x"])


@settings(max_examples=300, deadline=None)
@example(fmt="shelly-gen2", tail="events/rpc", payload=b'{"":null,"method":[]}')  # found by it
@example(fmt="shelly-gen2", tail="events/rpc", payload=b'{"method":{"a":1}}')
@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    tail=TOPIC_TAILS,
    payload=st.one_of(st.binary(max_size=64), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
)
def test_no_payload_makes_the_pipeline_raise(fmt: str, tail: str, payload: bytes) -> None:
    pipeline = MessagePipeline(FUZZ_SETTINGS)
    handled = pipeline.handle(Message(f"{fmt}/d-{fmt}/{tail}", payload, ms(RECEIVED)))
    for entry in handled.quarantine:
        assert not entry.reason.startswith("decoder error"), entry.reason
        assert len(entry.payload.encode()) <= 4096 * 3  # text of at most 4 KiB of bytes
    for _, fld, _, value in handled.readings:
        assert value == value, fld  # never NaN


@pytest.mark.parametrize("fmt", ["gronkoll-agent", "gronkoll-meeting"])
def test_a_gronkoll_message_nested_too_deep_is_quarantined_not_raised(fmt: str) -> None:
    pipeline = MessagePipeline(FUZZ_SETTINGS)
    deep = b"[" * 100_000 + b"]" * 100_000
    handled = pipeline.handle(Message(f"{fmt}/d-{fmt}/x", deep, ms(RECEIVED)))
    assert [q.reason for q in handled.quarantine] == ["payload is JSON nested too deep to read"]
    assert "not kept" in handled.quarantine[0].payload
