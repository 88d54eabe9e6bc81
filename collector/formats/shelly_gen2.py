"""Shelly Gen2/Gen3 (Plus, Pro, Gen3 plugs and relays): Switch status over MQTT.

Sources (Shelly API documentation, shelly-api-docs.shelly.cloud/gen2):
"ComponentsAndServices/Switch" (status: `apower` W, `voltage` V, `current` A, `freq` Hz,
`aenergy.total` Wh, `aenergy.by_minute` mWh, `aenergy.minute_ts` Unix s, `temperature.tC`);
"ComponentsAndServices/Mqtt" (`<prefix>/status/<component>` when generic status updates are
on, `<prefix>/events/rpc` for notifications); "General/Notifications" (`NotifyStatus`
carries only what changed, with `params.ts`, and a key that left the status as null;
`NotifyFullStatus` carries it all).

So a status message may hold any subset of the fields: each one present is read, none is
required. `aenergy.total` is a counter (`energy_wh_total`) read at `aenergy.minute_ts` when
present, a time the device sets, so a redelivery repeats it. Other values take the
notification's `ts`, else the receive time. `pm1:<n>` (Plus PM Mini) has the same fields.
Component 0 is the device's own; others are kept as measurements (`power_w[1]`...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    json_object,
)
from gronkoll.collector.formats.times import (
    believable,
    unix_ms,
)
from gronkoll.fields import row_field

COMPONENT = re.compile(r"(switch|pm1):(\d+)")
NOTIFY_METHODS = frozenset({"NotifyStatus", "NotifyFullStatus"})

#: Components whose names (field names, labels) are remembered; a device has a few.
COMPONENTS_CACHED = 1024

#: status key -> field
MEASUREMENTS: tuple[tuple[str, str], ...] = (
    ("apower", "power_w"),
    ("voltage", "voltage_v"),
    ("current", "current_a"),
    ("freq", "frequency_hz"),
)


class ShellyGen2(Decoder):
    """Shelly Gen2/Gen3 `<prefix>/status/switch:<n>` and `<prefix>/events/rpc` NotifyStatus."""

    name = "shelly-gen2"

    def device_from_topic(self, topic: str) -> str | None:
        """The topic prefix: everything before /status/ or /events/ (the device id by default)."""
        for marker in ("/status/", "/events/"):
            if marker in topic:
                return topic.split(marker, 1)[0] or None
        return None

    def decode(self, msg: Input) -> Decoded:
        """The metering fields present in a status or NotifyStatus message."""
        out = Decoded()
        if "/status/" in msg.topic:
            key = msg.topic.rsplit("/status/", 1)[1]
            component = _component_named(key)
            if component is None:
                out.ignored = f"status of {key}, not a metering switch"
                return out
            obj = json_object(msg.data, out)
            if obj is not None:
                _component(component, obj, msg.received_ms, msg, out)
                if not out.readings and not out.problems:
                    out.ignored = f"{key} status without metering fields"
            return out
        if not msg.topic.endswith("/events/rpc"):
            out.ignored = "not a status or events/rpc topic"
            return out
        obj = json_object(msg.data, out)
        if obj is None:
            return out
        method = obj.get("method")
        if not isinstance(method, str) or method not in NOTIFY_METHODS:
            name = method if isinstance(method, str) and method else "an RPC message"
            out.ignored = f"{name}: no status in it"
            return out
        params = obj.get("params")
        if not isinstance(params, dict):
            out.problem(f"{method} without a params object")
            return out
        t = msg.received_ms
        if "ts" in params:
            device_t = unix_ms(params["ts"], "s")
            if device_t is None:
                out.problem(f"params.ts: {params['ts']!r} is not a Unix time")
            t = believable(device_t, msg, out, "params.ts")
        for key, status in params.items():
            component = _component_named(key)
            if component is not None:
                if isinstance(status, dict):
                    _component(component, status, t, msg, out)
                else:
                    out.problem(f"params.{key} is not an object")
        if not out.readings and not out.problems:
            out.ignored = f"{method} without metering fields"
        return out


@dataclass(frozen=True, slots=True)
class _Component:
    """One component's field names and problem labels, worked out once per component key."""

    key: str  # switch:0, pm1:1...
    measurements: tuple[tuple[str, str, str], ...]  # (status key, field, label)
    temperature: tuple[str, str]  # (field, label) of temperature.tC
    energy: tuple[str, str]  # (field, label) of aenergy.total


@lru_cache(maxsize=COMPONENTS_CACHED)
def _component_named(key: str) -> _Component | None:
    """The metering component a status key names (switch:<n>, pm1:<n>), else None."""
    match = COMPONENT.fullmatch(key)
    if match is None:
        return None
    channel = match.group(2)

    def fld(name: str) -> str:
        return name if channel == "0" else row_field(name, channel)

    return _Component(
        key=key,
        measurements=tuple((skey, fld(name), f"{key}.{skey}") for skey, name in MEASUREMENTS),
        temperature=(fld("temperature_c"), f"{key}.temperature.tC"),
        energy=(fld("energy_wh_total"), f"{key}.aenergy.total"),
    )


def _component(
    component: _Component, status: dict[str, Any], t: int, msg: Input, out: Decoded
) -> None:
    """Read the metering fields one component's (partial) status holds."""
    key = component.key
    for skey, fld, label in component.measurements:
        # NotifyStatus sends a key that left the status as null (General/Notifications)
        raw = status.get(skey)
        if raw is not None:
            out.add(fld, t, raw, label=label)
    temperature = status.get("temperature")
    if isinstance(temperature, dict) and temperature.get("tC") is not None:
        fld, label = component.temperature
        out.add(fld, t, temperature["tC"], label=label)
    if status.get("aenergy") is not None:
        aenergy = status["aenergy"]
        if not isinstance(aenergy, dict) or "total" not in aenergy:
            out.problem(f"{key}.aenergy has no total")
            return
        energy_t = t
        if "minute_ts" in aenergy:
            minute = unix_ms(aenergy["minute_ts"], "s")
            if minute is None:
                out.problem(f"{key}.aenergy.minute_ts: {aenergy['minute_ts']!r} is not a Unix time")
            else:
                energy_t = believable(minute, msg, out, f"{key}.aenergy.minute_ts")
        fld, label = component.energy
        out.add(fld, energy_t, aenergy["total"], label=label)
