"""Topic routing: a device's own topic, then fleet subscriptions with MQTT wildcards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gronkoll.collector.routes import Routes, matches
from gronkoll.errors import ConfigError
from gronkoll.settings import Settings, parse_settings


def settings_with(
    subscriptions: list[dict[str, Any]], devices: list[dict[str, Any]] | None = None
) -> Settings:
    return parse_settings(
        {
            "municipality": {"name": "Exempelby"},
            "sites": [{"id": "skola1"}],
            "devices": devices
            or [
                {
                    "id": "kontor-skrivare-2",
                    "site": "skola1",
                    "kind": "meter",
                    "mqtt": {"topic": "zigbee2mqtt/kontor/skrivare-2", "format": "zigbee2mqtt"},
                }
            ],
            "mqtt": {"subscriptions": subscriptions},
        },
        Path("gronkoll.yaml"),
    )


FLEET = settings_with(
    [
        {"topic": "tele/+/SENSOR", "format": "tasmota", "device_level": 1},
        {"topic": "shellies/+/relay/0/energy", "format": "shelly-gen1", "device_level": 1},
        {"topic": "+/status/switch:0", "format": "shelly-gen2", "device_level": 0},
        {"topic": "zigbee2mqtt/#", "format": "zigbee2mqtt"},
        {"topic": "gronkoll/agent/+/state", "format": "gronkoll-agent", "device_level": 2},
        {"topic": "gronkoll/meetings", "format": "gronkoll-meeting"},
        {"topic": "hus/#", "format": "number", "device_level": 2, "field": "power_w"},
    ]
)


@pytest.mark.parametrize(
    ("topic", "fmt", "device", "source"),
    [
        ("tele/plug-3/SENSOR", "tasmota", "plug-3", "mqtt.subscriptions[0]"),
        ("shellies/shellyplug-s-A1B2C3/relay/0/energy", "shelly-gen1", "shellyplug-s-A1B2C3", "mqtt.subscriptions[1]"),
        ("shellyplusplugs-a0b1/status/switch:0", "shelly-gen2", "shellyplusplugs-a0b1", "mqtt.subscriptions[2]"),
        # the device's own topic wins over the subscription that also covers it
        ("zigbee2mqtt/kontor/skrivare-2", "zigbee2mqtt", "kontor-skrivare-2", "devices[0].mqtt"),
        # without device_level, Zigbee2MQTT's device is everything after the first level
        ("zigbee2mqtt/kaffe", "zigbee2mqtt", "kaffe", "mqtt.subscriptions[3]"),
        ("zigbee2mqtt/plan-2/kaffe", "zigbee2mqtt", "plan-2/kaffe", "mqtt.subscriptions[3]"),
        ("gronkoll/agent/pc-0001/state", "gronkoll-agent", "pc-0001", "mqtt.subscriptions[4]"),
        ("gronkoll/meetings", "gronkoll-meeting", None, "mqtt.subscriptions[5]"),  # the payload names it
        ("hus/a/m-1/effekt", "number", "m-1", "mqtt.subscriptions[6]"),
        ("hus/a", "number", None, "mqtt.subscriptions[6]"),  # no level 2 in this topic
    ],
)  # fmt: skip
def test_a_topic_finds_its_format_and_device(
    topic: str, fmt: str, device: str | None, source: str
) -> None:
    route = Routes(FLEET).match(topic)
    assert route is not None
    assert (route.mapping.format, route.device, route.source) == (fmt, device, source)


@pytest.mark.parametrize(
    "topic",
    ["tele/plug-3/STATE", "stat/plug-3/RESULT", "shellies/x/relay/1/energy", "$SYS/broker/uptime"],
)
def test_a_topic_no_mapping_covers_has_no_route(topic: str) -> None:
    assert Routes(FLEET).match(topic) is None


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("sport/#", "sport", True),  # MQTT 4.7.1.2: # also matches the parent level
        ("sport/#", "sport/tennis/player1", True),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),  # an empty level is a level
        ("+/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/broker", False),  # 4.7.2: wildcards first do not match $ topics
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_wildcards_follow_the_mqtt_specification(pattern: str, topic: str, expected: bool) -> None:
    assert matches(tuple(pattern.split("/")), topic.split("/")) is expected


@pytest.mark.parametrize(
    ("subscription", "message"),
    [
        ({"topic": "tele/+x/SENSOR", "format": "tasmota"}, "'+' must be a whole level"),
        ({"topic": "a/#/b", "format": "tasmota"}, "'#' must be a whole last level"),
        (
            {"topic": "tele/+/SENSOR", "format": "tasmota", "device_level": 0},
            "device_level 0 is the fixed level 'tele' of 'tele/+/SENSOR'",
        ),
        (
            {"topic": "tele/+/SENSOR", "format": "tasmota", "device_level": 3},
            "device_level 3 is beyond the 3 levels of 'tele/+/SENSOR' (levels count from 0)",
        ),
        ({"topic": "el/+", "format": "number", "field": "power_w"}, "format number cannot tell the device"),
        ({"topic": "el/+", "format": "number", "field": "effekt", "device_level": 1}, "field: unknown field 'effekt'"),
    ],
)  # fmt: skip
def test_a_bad_subscription_is_a_config_error_naming_its_key(
    subscription: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match="gronkoll.yaml: mqtt.subscriptions\\[0\\]") as err:
        Routes(settings_with([subscription]))
    assert message in str(err.value)


def test_device_topics_are_exact_and_belong_to_one_device() -> None:
    device = {"site": "skola1", "kind": "meter"}
    with pytest.raises(ConfigError, match=r"devices\[0\].mqtt.topic: 'z/\+' has a wildcard"):
        Routes(
            settings_with(
                [], [{"id": "a", **device, "mqtt": {"topic": "z/+", "format": "zigbee2mqtt"}}]
            )
        )
    same = {"topic": "z/a", "format": "zigbee2mqtt"}
    with pytest.raises(ConfigError, match=r"devices\[1\].mqtt.topic: 'z/a' is already 'a''s topic"):
        Routes(
            settings_with(
                [], [{"id": "a", **device, "mqtt": same}, {"id": "b", **device, "mqtt": same}]
            )
        )


def test_a_device_level_inside_a_hash_is_allowed() -> None:
    routes = Routes(settings_with([{"topic": "m/#", "format": "tasmota", "device_level": 2}]))
    route = routes.match("m/x/plug-9/SENSOR")
    assert route is not None and route.device == "plug-9"


def test_the_client_subscribes_to_every_filter_and_device_topic_once() -> None:
    routes = Routes(settings_with([{"topic": "zigbee2mqtt/#", "format": "zigbee2mqtt"}] * 2))
    assert routes.topic_filters() == ["zigbee2mqtt/#", "zigbee2mqtt/kontor/skrivare-2"]
