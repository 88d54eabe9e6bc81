"""Config for scheduled shutdowns (docs/shutdowns.md): policies, calendar, keys, savings."""

from __future__ import annotations

import ipaddress
import re
from datetime import date, time
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from gronkoll.cron import parse_cron
from gronkoll.settings_base import Identifier, Strict


def _cron(value: str) -> str:
    parse_cron(value)  # raises ValueError with what is wrong
    return value


class Break(Strict):
    """School days off (sportlov, påsklov, ...): the dates from and to, both included."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(min_length=1)
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _in_order(self) -> Break:
        if self.to < self.from_:
            raise ValueError(f"break {self.name!r} ends ({self.to}) before it starts")
        return self


class MaintenanceWindow(Strict):
    """Wake the policy's computers (Wake-on-LAN) at a cron time, shut them down N min later."""

    name: Identifier
    wake: str
    shutdown_after_minutes: int = Field(default=60, ge=1, le=24 * 60)

    @field_validator("wake")
    @classmethod
    def _wake_cron(cls, value: str) -> str:
        return _cron(value)


class Policy(Strict):
    """When and which computers (devices of kind pc) are shut down."""

    name: Identifier
    groups: list[str] = []
    sites: list[str] = []
    devices: list[str] = []
    exempt_devices: list[str] = []
    exempt_groups: list[str] = []
    shutdown: str | None = None  # cron: minute hour day month weekday, local time
    calendar: Literal["se-school", "none"] = "se-school"
    warn_minutes: int = Field(default=10, ge=0, le=240)
    allow_postpone: bool = True  # once, by postpone_minutes
    postpone_minutes: int = Field(default=30, ge=1, le=240)
    skip_if_active_minutes: int | None = Field(default=None, ge=1)
    audit_only: bool = False
    maintenance: list[MaintenanceWindow] = []

    @field_validator("shutdown")
    @classmethod
    def _shutdown_cron(cls, value: str | None) -> str | None:
        return None if value is None else _cron(value)

    @model_validator(mode="after")
    def _does_something(self) -> Policy:
        if self.shutdown is None and not self.maintenance:
            raise ValueError("a policy needs a shutdown cron expression or a maintenance window")
        if not (self.groups or self.sites or self.devices):
            raise ValueError("a policy needs targets: groups, sites or devices")
        return self


class WakeOnLan(Strict):
    broadcast: str = "255.255.255.255"
    port: int = Field(default=9, ge=1, le=65535)

    @field_validator("broadcast")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError as err:
            raise ValueError(f"{value!r} is not an IPv4 address") from err
        return value


# Share of school computers that would have stayed on overnight without a policy, when no
# baseline was measured: Webber et al., Field Surveys of Office Equipment Operating Patterns,
# LBNL-46930 (2001): 44 % switched off at night, so 56 % left on (../methodology.md, §5).
DEFAULT_COUNTERFACTUAL_ON_SHARE = 0.56


class ShutdownSettings(Strict):
    signing_keys: dict[str, SecretStr] = {}  # per site id; at least 32 characters
    policies: list[Policy] = []
    breaks: list[Break] = []
    study_days: list[date] = []
    # How often a standby scheduler tries to take over (and the active one checks its lock).
    leader_poll_s: float = Field(default=5, gt=0, le=300)
    wol: WakeOnLan = WakeOnLan()
    command_ttl_s: int = Field(default=600, ge=10)
    verify_deadline_s: int = Field(default=300, ge=1)
    retries: int = Field(default=2, ge=0, le=10)
    counterfactual_on_share: float = Field(default=DEFAULT_COUNTERFACTUAL_ON_SHARE, ge=0, le=1)
    # Savings (gronkoll/savings.py): the price of a kWh (the contract's, all in, excl. VAT;
    # no default: without it the shutdown report gives no SEK), when a night off ends at the
    # latest, and how far above its off power a plug may read a computer that is off.
    price_sek_per_kwh: float | None = Field(default=None, ge=0)
    savings_until: time = time(7, 0)
    off_margin_w: float = Field(default=1.0, ge=0)

    @field_validator("savings_until", mode="before")
    @classmethod
    def _local_time(cls, value: object) -> object:
        # YAML reads an unquoted 7:00 as the number 420 (base 60): refuse it rather than
        # take it as 00:07.
        if isinstance(value, str) and re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            hours, minutes = value.split(":")
            return time(int(hours), int(minutes))
        if isinstance(value, time) and value.tzinfo is None:
            return value
        raise ValueError(f'expected a local time in quotes such as "07:00", got {value!r}')

    @field_validator("signing_keys")
    @classmethod
    def _long_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for site, key in value.items():
            if len(key.get_secret_value()) < 32:
                raise ValueError(f"the key for site {site!r} must be at least 32 characters")
        return value

    def policy(self, name: str) -> Policy | None:
        """The policy with this name, or None."""
        return next((p for p in self.policies if p.name == name), None)
