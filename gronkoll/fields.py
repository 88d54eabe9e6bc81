"""The reading fields Gronkoll knows: each with its unit, its kind and what energy it yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["gauge", "counter", "delta", "state"]
Quantity = Literal["electricity", "heat"]

#: Device states, in the order their codes are stored.
STATES: tuple[str, ...] = ("on", "idle", "sleep", "off")
STATE_CODES: dict[str, int] = {name: code for code, name in enumerate(STATES)}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One reading field: its name carries the unit, its kind says how energy comes from it."""

    name: str
    unit: str
    kind: FieldKind
    description: str
    energy: Quantity | None = None  # the energy quantity this field yields, if any


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in (
        FieldSpec("power_w", "W", "gauge", "active power", energy="electricity"),
        FieldSpec("energy_wh_total", "Wh", "counter", "active energy meter", energy="electricity"),
        FieldSpec(
            "energy_wh",
            "Wh",
            "delta",
            "active energy since the previous report",
            energy="electricity",
        ),
        FieldSpec("energy_wh_meter", "Wh", "gauge", "a meter's own total, kept as a measurement"),
        FieldSpec("state", "", "state", "on, idle, sleep or off", energy="electricity"),
        FieldSpec("heat_wh_total", "Wh", "counter", "thermal energy delivered", energy="heat"),
        FieldSpec("heat_power_w", "W", "gauge", "thermal power"),
        FieldSpec("apparent_power_va", "VA", "gauge", "apparent power"),
        FieldSpec("current_a", "A", "gauge", "current"),
        FieldSpec("voltage_v", "V", "gauge", "voltage"),
        FieldSpec("frequency_hz", "Hz", "gauge", "frequency"),
        FieldSpec("output_load_pct", "%", "gauge", "UPS output load"),
        FieldSpec("battery_charge_pct", "%", "gauge", "battery charge"),
        FieldSpec("battery_runtime_s", "s", "gauge", "battery runtime left"),
        FieldSpec("temperature_c", "°C", "gauge", "temperature"),
        FieldSpec("uptime_s", "s", "gauge", "time since the device started"),
        FieldSpec("reachable", "", "gauge", "1 when the device answered, else 0"),
        FieldSpec("user_present", "", "gauge", "1 when someone is logged in, else 0"),
        FieldSpec("participants", "", "gauge", "people in a meeting room"),
    )
}

#: Fields in the order a device's energy source is preferred (DESIGN decision 2).
ENERGY_PREFERENCE: tuple[str, ...] = ("energy_wh_total", "energy_wh", "power_w", "state")


def field_spec(name: str) -> FieldSpec | None:
    """The spec of a known field, or None."""
    return FIELDS.get(name)


def row_field(field: str, row: str) -> str:
    """The field name of one table row's value, e.g. current_a[1] for phase 1's current.

    Row fields are measurements: only a device's own field (power_w, energy_wh_total)
    yields energy.
    """
    return f"{field}[{row}]"


def base_field(name: str) -> str:
    """The field a (row) field name is made from: current_a[1] -> current_a."""
    return name.split("[", 1)[0]


def unit_of(name: str) -> str:
    """The unit of a field or row field name, '' when it has none or is unknown."""
    spec = FIELDS.get(base_field(name))
    return spec.unit if spec else ""
