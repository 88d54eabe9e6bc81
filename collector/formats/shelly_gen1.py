"""Shelly Gen1 (Plug, Plug S, 1PM, 2.5): `shellies/<id>/relay/<n>/power` and `/energy`.

Source: Shelly Gen1 API documentation (shelly-api-docs.shelly.cloud/gen1, the MQTT section
of each relay device): `relay/<n>/power` is the instantaneous power in W; `relay/<n>/energy`
is an energy counter in watt-minutes that the device keeps since it booted (Home Assistant
issue #85210 and the ioBroker.shelly adapter confirm the unit). So energy is the counter / 60
in Wh (`energy_wh_total`), and a reboot restarts it from zero: the energy engine sees the
drop last and counts from zero, never a negative amount or a spike.

The payload is a plain number and carries no time: readings take the receive time.
Relay 0 is the device's own power and energy; other relays are kept as measurements
(`power_w[1]`...) until a device of several relays is split into one Gronkoll device each.
"""

from __future__ import annotations

from gronkoll.collector.formats.base import Decoded, Decoder, Input
from gronkoll.fields import row_field

#: topic suffix -> (field, scale to the field's unit)
SUFFIXES: dict[str, tuple[str, float]] = {
    "power": ("power_w", 1.0),
    "energy": ("energy_wh_total", 1 / 60),  # watt-minutes -> Wh
}


class ShellyGen1(Decoder):
    """Shelly Gen1 relay power (W) and energy (watt-minutes since boot)."""

    name = "shelly-gen1"

    def device_from_topic(self, topic: str) -> str | None:
        """The <id> of shellies/<id>/..."""
        levels = topic.split("/")
        if len(levels) > 1 and levels[0] == "shellies" and levels[1]:
            return levels[1]
        return None

    def decode(self, msg: Input) -> Decoded:
        """Power or energy of one relay, from its own topic, at the receive time."""
        out = Decoded()
        levels = msg.topic.split("/")
        if (
            len(levels) < 3
            or levels[-3] != "relay"
            or not levels[-2].isdigit()
            or levels[-1] not in SUFFIXES
        ):
            out.ignored = "not a relay power or energy topic (relay state, online, info...)"
            return out
        fld, scale = SUFFIXES[levels[-1]]
        relay = int(levels[-2])
        if relay:
            fld = row_field(fld, str(relay))
        text = msg.data.decode("utf-8", errors="replace").strip()
        out.add(fld, msg.received_ms, text, label="/".join(levels[-3:]), scale=scale)
        return out
