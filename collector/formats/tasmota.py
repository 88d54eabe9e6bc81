"""Tasmota power monitoring: the ENERGY object of `tele/<topic>/SENSOR`.

Sources (Tasmota documentation, tasmota.github.io/docs): "Power Monitoring" (the SENSOR
message and its ENERGY fields) and "Commands" (TelePeriod; EnergyTotal, EnergyToday,
EnergyYesterday, which set or reset the device's own totals).

* `Period` is the energy in Wh since the previous telemetry message. It is an amount, not a
  counter, so a user's `EnergyTotal 0`, the `Today` rollover at local midnight and a restart
  leave it right: it becomes `energy_wh`. `Total` (kWh since `TotalStartTime`) is then kept as
  the meter's own figure, `energy_wh_meter`.
* Firmware without `Period` (older than 9.x) leaves `Total` as the only energy source: it
  becomes the counter `energy_wh_total`, whose reset the energy engine counts from zero.
* `Time` is the device's local time without an offset; it is read in the municipality's
  time zone and used as the reading time, so a redelivered message repeats its readings'
  times and is dropped as a repeat.
* Several channels (Sonoff Dual R3, multi-phase meters) send lists: amounts (power,
  current, energy) are summed over the channels, voltage and frequency are the first's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    json_object,
    number,
)
from gronkoll.collector.formats.times import (
    text_time,
)

log = logging.getLogger(__name__)

Combine = Callable[[list[float]], float]


def _first(values: list[float]) -> float:
    return values[0]


#: (ENERGY key, field, how channels combine, scale to the field's unit, label of a problem)
MEASUREMENTS: tuple[tuple[str, str, Combine, float, str], ...] = (
    ("Power", "power_w", sum, 1.0, "ENERGY.Power"),
    ("ApparentPower", "apparent_power_va", sum, 1.0, "ENERGY.ApparentPower"),
    ("Current", "current_a", sum, 1.0, "ENERGY.Current"),
    ("Voltage", "voltage_v", _first, 1.0, "ENERGY.Voltage"),
    ("Frequency", "frequency_hz", _first, 1.0, "ENERGY.Frequency"),
)


class Tasmota(Decoder):
    """Tasmota `tele/<topic>/SENSOR` with an ENERGY object."""

    name = "tasmota"

    def device_from_topic(self, topic: str) -> str | None:
        """The %topic% part: the levels other than `tele` and the last (SENSOR)."""
        levels = topic.split("/")[:-1]
        rest = [level for level in levels if level != "tele"]
        return "/".join(rest) or None

    def decode(self, msg: Input) -> Decoded:
        """Period, Total, Power, ApparentPower, Voltage, Current, Frequency at the payload's Time."""
        out = Decoded()
        topic = msg.topic
        if not (topic.endswith("/SENSOR") or topic == "SENSOR"):  # the last level, unsplit
            out.ignored = "not a Tasmota SENSOR telemetry topic (STATE, LWT, RESULT...)"
            return out
        obj = json_object(msg.data, out)
        if obj is None:
            return out
        t = msg.received_ms
        time_text = obj.get("Time")
        if isinstance(time_text, str):
            t = text_time(time_text, msg, out, "Time")
        else:
            out.problem("no Time in the payload; used the receive time")
        energy = obj.get("ENERGY")
        if not isinstance(energy, dict):
            out.problem("no ENERGY object in the payload (is power monitoring enabled?)")
            return out
        if "Period" in energy:
            out.add("energy_wh", t, _channels(energy["Period"], sum), label="ENERGY.Period")
            if "Total" in energy:
                total = _channels(energy["Total"], sum)
                out.add("energy_wh_meter", t, total, label="ENERGY.Total", scale=1000)
        elif "Total" in energy:
            if not msg.state.get("warned_no_period"):
                msg.state["warned_no_period"] = True
                log.info(
                    "%s sends no ENERGY.Period (firmware before 9.x): its Total is read as a "
                    "counter; a user's EnergyTotal reset then counts the Today part again",
                    msg.device,
                )
            total = _channels(energy["Total"], sum)
            out.add("energy_wh_total", t, total, label="ENERGY.Total", scale=1000)
        else:
            out.problem("ENERGY has neither Period nor Total: no energy in this message")
        for key, fld, combine, scale, label in MEASUREMENTS:
            raw = energy.get(key)
            if raw is not None:
                if isinstance(raw, list):  # several channels (most devices send one number)
                    raw = _channels(raw, combine)
                out.add(fld, t, raw, label=label, scale=scale)
        return out


def _channels(raw: object, combine: Combine) -> object:
    """One value from a per-channel list; anything unusable is passed on for add() to report."""
    if not isinstance(raw, list):
        return raw
    values = [number(v) for v in raw]
    if not values or any(v is None for v in values):
        return raw
    return combine([v for v in values if v is not None])
