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
            if COMPONENT.fullmatch(key) is None:
                out.ignored = f"status of {key}, not a metering switch"
                return out
            obj = json_object(msg.data, out)
            if obj is not None:
                _component(key, obj, msg.received_ms, msg, out)
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
            if COMPONENT.fullmatch(key) is not None:
                if isinstance(status, dict):
                    _component(key, status, t, msg, out)
                else:
                    out.problem(f"params.{key} is not an object")
        if not out.readings and not out.problems:
            out.ignored = f"{method} without metering fields"
        return out


def _component(key: str, status: dict[str, Any], t: int, msg: Input, out: Decoded) -> None:
    """Read the metering fields one component's (partial) status holds."""
    match = COMPONENT.fullmatch(key)
    channel = match.group(2) if match else "0"

    def fld(name: str) -> str:
        return name if channel == "0" else row_field(name, channel)

    for skey, name in MEASUREMENTS:
        # NotifyStatus sends a key that left the status as null (General/Notifications)
        if status.get(skey) is not None:
            out.add(fld(name), t, status[skey], label=f"{key}.{skey}")
    temperature = status.get("temperature")
    if isinstance(temperature, dict) and temperature.get("tC") is not None:
        out.add(fld("temperature_c"), t, temperature["tC"], label=f"{key}.temperature.tC")
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
        out.add(fld("energy_wh_total"), energy_t, aenergy["total"], label=f"{key}.aenergy.total")
