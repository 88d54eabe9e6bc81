"""Which device and payload format a topic belongs to.

Two ways, tried in this order:

1. a device's own `mqtt.topic`, matched exactly (a Zigbee2MQTT friendly name may hold
   slashes, so no level is special);
2. the first of `mqtt.subscriptions` whose filter matches, with MQTT's wildcards (`+` one
   level, `#` the rest; a filter starting with a wildcard does not match `$SYS/...`). The
   device id is the topic level `device_level`; without one, the format's own rule names it
   (Zigbee2MQTT: everything after the first level; Tasmota, Shelly: their id's place).

Routes are checked when they are built: a malformed filter, a device_level beyond the
filter's levels or on a fixed level, a format that cannot tell its device without one, or
an unknown field is a ConfigError naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from gronkoll.collector.formats import FORMATS, Decoder
from gronkoll.errors import ConfigError
from gronkoll.fields import FIELDS, base_field
from gronkoll.settings import MqttMapping, Settings

#: Routes of this many distinct topics are remembered; beyond that the table starts again.
MAX_TOPICS_CACHED = 200_000


@dataclass(frozen=True, slots=True)
class Route:
    """Where a topic goes: a mapping (format and its options) and the device, if known."""

    mapping: MqttMapping
    device: str | None  # None: the format names it from the topic, or the payload does
    source: str  # the config key, e.g. devices[3].mqtt or mqtt.subscriptions[0]
    decoder: Decoder  # the mapping's format, looked up once per topic, not per message


@dataclass(frozen=True, slots=True)
class _Filter:
    levels: tuple[str, ...]
    mapping: MqttMapping
    device_level: int | None
    source: str


class Routes:
    """The topic table of one configuration."""

    def __init__(self, settings: Settings) -> None:
        self._exact: dict[str, Route] = {}
        self._filters: list[_Filter] = []
        self._known: dict[str, Route | None] = {}  # every topic's route, found once
        for i, dev in enumerate(settings.devices):
            if dev.mqtt is None:
                continue
            key = f"devices[{i}].mqtt"
            if "+" in dev.mqtt.topic or "#" in dev.mqtt.topic:
                raise ConfigError(
                    f"{settings.source}: {key}.topic: {dev.mqtt.topic!r} has a wildcard; a "
                    "device's own topic is exact (use mqtt.subscriptions for a fleet)"
                )
            if dev.mqtt.topic in self._exact:
                other = self._exact[dev.mqtt.topic]
                raise ConfigError(
                    f"{settings.source}: {key}.topic: {dev.mqtt.topic!r} is already "
                    f"{other.device!r}'s topic ({other.source})"
                )
            _check_mapping(settings, dev.mqtt, key)
            self._exact[dev.mqtt.topic] = Route(dev.mqtt, dev.id, key, FORMATS[dev.mqtt.format])
        subscriptions = settings.mqtt.subscriptions if settings.mqtt else []
        for i, sub in enumerate(subscriptions):
            key = f"mqtt.subscriptions[{i}]"
            levels = tuple(sub.topic.split("/"))
            problem = filter_problem(levels) or _level_problem(levels, sub.device_level)
            if (
                problem is None
                and sub.device_level is None
                and FORMATS[sub.format].needs_device_level
            ):
                problem = (
                    f"format {sub.format} cannot tell the device from the topic: give "
                    "device_level (the topic level, from 0, that holds the device id)"
                )
            if problem is not None:
                raise ConfigError(f"{settings.source}: {key}: {problem}")
            _check_mapping(settings, sub, key)
            self._filters.append(_Filter(levels, sub, sub.device_level, key))

    def match(self, topic: str) -> Route | None:
        """The route of a topic, or None when no device topic or subscription covers it."""
        try:
            return self._known[topic]
        except KeyError:
            pass
        if len(self._known) >= MAX_TOPICS_CACHED:
            self._known.clear()
        route = self._known[topic] = self._find(topic)
        return route

    def _find(self, topic: str) -> Route | None:
        route = self._exact.get(topic)
        if route is not None:
            return route
        levels = topic.split("/")
        for f in self._filters:
            if matches(f.levels, levels):
                decoder = FORMATS[f.mapping.format]
                device = None
                if f.device_level is not None:
                    device = levels[f.device_level] if f.device_level < len(levels) else None
                    device = device or None  # an empty level names nothing
                else:
                    device = decoder.device_from_topic(topic)
                return Route(f.mapping, device, f.source, decoder)
        return None

    def topic_filters(self) -> list[str]:
        """What to subscribe to: every subscription's filter and every device's own topic."""
        seen = dict.fromkeys("/".join(f.levels) for f in self._filters)
        seen.update(dict.fromkeys(self._exact))
        return list(seen)


def matches(pattern: tuple[str, ...], levels: list[str]) -> bool:
    """Whether a topic (split in levels) matches a filter, by MQTT 3.1.1/5 section 4.7."""
    if levels and levels[0].startswith("$") and pattern and pattern[0] in ("+", "#"):
        return False
    for i, want in enumerate(pattern):
        if want == "#":
            return True  # the rest, including none: sport/# matches sport
        if i >= len(levels):
            return False
        if want != "+" and want != levels[i]:
            return False
    return len(levels) == len(pattern)


def filter_problem(levels: tuple[str, ...]) -> str | None:
    """Why a topic filter is not a valid MQTT filter, or None."""
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"topic {'/'.join(levels)!r}: '#' must be a whole last level"
        if "+" in level and level != "+":
            return f"topic {'/'.join(levels)!r}: '+' must be a whole level"
    return None


def _level_problem(levels: tuple[str, ...], device_level: int | None) -> str | None:
    """Why device_level cannot hold a device id in this filter, or None."""
    if device_level is None:
        return None
    shown = "/".join(levels)
    if levels[-1] == "#" and device_level >= len(levels) - 1:
        return None  # somewhere in what '#' matches
    if device_level >= len(levels):
        return (
            f"device_level {device_level} is beyond the {len(levels)} levels of {shown!r} "
            "(levels count from 0)"
        )
    if levels[device_level] != "+":
        return (
            f"device_level {device_level} is the fixed level {levels[device_level]!r} of "
            f"{shown!r}; it must be a '+' or '#' level, which holds the device id"
        )
    return None


def _check_mapping(settings: Settings, mapping: MqttMapping, key: str) -> None:
    """Fields named in a number or json mapping must be fields Gronkoll knows."""
    named: list[tuple[str, str]] = []
    if mapping.field is not None:
        named.append((f"{key}.field", mapping.field))
    if mapping.json_format is not None:
        named += [
            (f"{key}.json.fields[{i}].field", f.field)
            for i, f in enumerate(mapping.json_format.fields)
        ]
    for where, name in named:
        if base_field(name) not in FIELDS:
            raise ConfigError(
                f"{settings.source}: {where}: unknown field {name!r} "
                f"(known: {', '.join(sorted(FIELDS))})"
            )
