"""Zigbee2MQTT metering plugs: `zigbee2mqtt/<friendly name>` with a JSON state.

Sources: Zigbee2MQTT documentation, "MQTT topics and messages" (a device publishes its state
to `<base topic>/<friendly name>`; `bridge/...`, `<name>/availability`, `<name>/set` and
`<name>/get` are other things; the optional `last_seen` attribute) and the device pages of
metering plugs, whose exposes give `power` (W), `energy` (kWh, cumulative), `voltage` (V)
and `current` (A).

A friendly name may hold slashes (`kontor/skrivare-2`), so without a device_level the device
id is everything after the base topic's first level. `energy` is a counter (kWh -> Wh,
`energy_wh_total`). A null value is an attribute the device has not reported yet, not an
error. The reading time is `last_seen` when Zigbee2MQTT is set to add it (ISO 8601 or epoch
ms), else the receive time.
"""

from __future__ import annotations

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    json_object,
)
from gronkoll.collector.formats.times import (
    believable,
    local_time_ms,
    unix_ms,
)

#: payload key -> (field, scale to the field's unit)
FIELDS: tuple[tuple[str, str, float], ...] = (
    ("power", "power_w", 1.0),
    ("energy", "energy_wh_total", 1000.0),  # kWh -> Wh
    ("voltage", "voltage_v", 1.0),
    ("current", "current_a", 1.0),
)
#: last topic levels that are not a device's state
NOT_STATE = frozenset({"availability", "set", "get"})


class Zigbee2Mqtt(Decoder):
    """Zigbee2MQTT device state: power, energy, voltage, current."""

    name = "zigbee2mqtt"

    def device_from_topic(self, topic: str) -> str | None:
        """The friendly name: everything after the base topic (slashes included)."""
        if "/" not in topic:
            return None
        return topic.split("/", 1)[1] or None

    def decode(self, msg: Input) -> Decoded:
        """The metering attributes of a device's state message."""
        out = Decoded()
        levels = msg.topic.split("/")
        if len(levels) > 1 and levels[1] == "bridge":
            out.ignored = "Zigbee2MQTT bridge topic"
            return out
        if levels[-1] in NOT_STATE or (len(levels) > 2 and levels[-2] in ("set", "get")):
            out.ignored = f"Zigbee2MQTT {levels[-1]} topic, not a device state"
            return out
        obj = json_object(msg.data, out)
        if obj is None:
            return out
        t = msg.received_ms
        seen = obj.get("last_seen")
        if seen is not None:
            if isinstance(seen, str):
                device_t = local_time_ms(seen, msg.settings.tz, msg.received_ms)
            else:
                device_t = unix_ms(seen, "ms")
            if device_t is None:
                out.problem(f"last_seen: {seen!r} is not a time; used the receive time")
            t = believable(device_t, msg, out, "last_seen")
        for key, fld, scale in FIELDS:
            if obj.get(key) is not None:
                out.add(fld, t, obj[key], label=key, scale=scale)
        if not out.readings and not out.problems:
            out.ignored = "no power, energy, voltage or current in the state (not a plug?)"
        return out
