"""Config for devices: what each is, where it stands, and the power it draws per state."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from gronkoll.settings_base import DeviceKind, Identifier, Strict
from gronkoll.settings_mqtt import DeviceMqtt
from gronkoll.settings_snmp import SnmpSettings


class PowerProfile(Strict):
    """Power drawn in each state, in W; a missing state means the state is not expected."""

    on_w: float | None = Field(default=None, ge=0)
    idle_w: float | None = Field(default=None, ge=0)
    sleep_w: float | None = Field(default=None, ge=0)
    off_w: float | None = Field(default=None, ge=0)

    def watts(self, state: str) -> float | None:
        """The power in W for a state name (on, idle, sleep, off), or None when not given."""
        value: float | None = getattr(self, f"{state}_w", None)
        return value

    def merged(self, override: PowerProfile | None) -> PowerProfile:
        """This profile with every value the override sets replaced."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


# Example values: measure your own. PC idle/off from ../methodology (pc_idle_w 35, pc_off_w 0.5,
# no primary source, marked U); sleep 2 W sits under the EU 617/2013 desktop sleep cap of 5 W.
DEFAULT_POWER_PROFILES: dict[str, PowerProfile] = {
    "pc": PowerProfile(on_w=60, idle_w=35, sleep_w=2, off_w=0.5),
    "meeting_room": PowerProfile(on_w=180, idle_w=60, sleep_w=8, off_w=2),
    "server": PowerProfile(on_w=350, idle_w=220, sleep_w=220, off_w=10),
}

# Highest plausible draw per kind when a device gives no rated_power_w; used to reject
# impossible counter jumps and power readings.
DEFAULT_RATED_POWER_W: dict[str, float] = {
    "server": 2_000,
    "pdu": 25_000,
    "ups": 40_000,
    "pc": 500,
    "meeting_room": 3_000,
    "meter": 2_000_000,
    "heat_meter": 5_000_000,
}


class Device(Strict):
    id: Identifier
    name: str = ""
    site: str
    group: str | None = None
    kind: DeviceKind
    profile: str | None = None
    power_profile: str | None = None
    power: PowerProfile | None = None
    rated_power_w: float | None = Field(default=None, gt=0)
    counter_bits: Literal[32, 64] | None = None
    metered_by: str | None = None
    snmp: SnmpSettings | None = None
    mqtt: DeviceMqtt | None = None
    mac: str | None = None  # for Wake-on-LAN; written back as aa:bb:cc:dd:ee:ff

    @field_validator("mac")
    @classmethod
    def _mac_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = re.sub(r"[:.-]", "", value).lower()
        if not re.fullmatch(r"[0-9a-f]{12}", digits):
            raise ValueError(f"{value!r} is not a MAC address (expected e.g. aa:bb:cc:dd:ee:ff)")
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
