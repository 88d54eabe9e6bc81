"""The configuration file: pydantic models, loading, and error messages that name file and key."""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gronkoll.cron import parse_cron
from gronkoll.errors import ConfigError
from gronkoll.policies import shutdown_problems

DEFAULT_CONFIG_NAME = "gronkoll.yaml"
CONFIG_ENV = "GRONKOLL_CONFIG"

SiteKind = Literal["school", "office", "server_room", "other"]
DeviceKind = Literal["server", "pdu", "ups", "pc", "meeting_room", "meter", "heat_meter"]
DEVICE_KINDS: tuple[str, ...] = DeviceKind.__args__  # type: ignore[attr-defined]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Municipality(Strict):
    name: str = Field(min_length=1)
    timezone: str = "Europe/Stockholm"
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    language: Literal["sv", "en"] = "sv"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (expected an IANA name such as Europe/Stockholm)"
            ) from err
        return value


class Site(Strict):
    id: Identifier
    name: str = ""
    kind: SiteKind = "other"
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class Group(Strict):
    id: Identifier
    name: str = ""
    description: str = ""
    site: str | None = None  # when set, every device of the group stands on this site


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


SnmpVersion = Literal["1", "2c", "3"]
AuthProtocol = Literal["MD5", "SHA", "SHA-256", "SHA-512"]
# AES-192/256 as net-snmp does them (Blumenthal); the -C variants are Cisco's key extension.
PrivProtocol = Literal["DES", "AES", "AES-128", "AES-192", "AES-256", "AES-192-C", "AES-256-C"]


class SnmpSettings(Strict):
    """How to reach one device over SNMP; keys and communities are secrets."""

    host: str = Field(min_length=1)
    port: int = Field(default=161, ge=1, le=65535)
    version: SnmpVersion = "2c"
    community: SecretStr | None = None
    user: str | None = None
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    context: str = ""
    timeout_s: float | None = Field(default=None, gt=0)
    retries: int | None = Field(default=None, ge=0, le=10)
    interval_s: float | None = Field(default=None, ge=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _credentials(self) -> SnmpSettings:
        if self.version in ("1", "2c"):
            if self.community is None or not self.community.get_secret_value():
                raise ValueError(f"SNMP v{self.version} needs a community")
            return self
        if not self.user:
            raise ValueError("SNMP v3 needs a user")
        for name, proto, key in (
            ("auth", self.auth_protocol, self.auth_key),
            ("priv", self.priv_protocol, self.priv_key),
        ):
            if (proto is None) != (key is None):
                raise ValueError(f"SNMP v3 {name}_protocol and {name}_key go together")
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError(f"SNMP v3 {name}_key must be at least 8 characters (RFC 3414)")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("SNMP v3 privacy (priv_protocol) needs authentication (auth_protocol)")
        return self


MqttFormat = Literal[
    "tasmota",
    "shelly-gen1",
    "shelly-gen2",
    "zigbee2mqtt",
    "json",
    "number",
    "gronkoll-agent",
    "gronkoll-meeting",
]


class JsonField(Strict):
    """One value in a JSON payload: where it is (RFC 6901 pointer), what field, what scale."""

    pointer: str = Field(pattern=r"^/")
    field: str
    scale: float = 1.0


class JsonFormat(Strict):
    """How to read a generic JSON payload."""

    fields: list[JsonField] = Field(min_length=1)
    time_pointer: str | None = Field(default=None, pattern=r"^/")
    time_unit: Literal["iso", "s", "ms"] = "iso"


class MqttMapping(Strict):
    """A payload format and, for the json and number formats, how to read it."""

    format: MqttFormat
    field: str | None = None  # number: the field the number is
    scale: float = 1.0  # number: raw x scale = value in the field's unit
    json_format: JsonFormat | None = Field(default=None, alias="json")  # the YAML key is json

    @model_validator(mode="after")
    def _format_options(self) -> MqttMapping:
        if self.format == "json" and self.json_format is None:
            raise ValueError("format json needs a json block (fields with pointer and field)")
        if self.format == "number" and self.field is None:
            raise ValueError("format number needs the field the number is, e.g. field: power_w")
        return self


class DeviceMqtt(MqttMapping):
    """A device's own topic (Zigbee2MQTT friendly names may hold slashes)."""

    topic: str = Field(min_length=1)


class MqttSubscription(MqttMapping):
    """A topic filter for a fleet: the topic level at device_level holds a device id."""

    topic: str = Field(min_length=1)
    device_level: int | None = Field(default=None, ge=0)


class MqttTls(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class BrokerConnection(Strict):
    """How to reach an MQTT broker: the keys the collector and the PC agent share."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTls | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(default=60, ge=5)
    session_expiry_s: int = Field(default=7 * 86400, ge=0)  # MQTT 5: how long the broker keeps us

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value


class MqttSettings(BrokerConnection):
    """The MQTT broker Gronkoll subscribes to (QoS 1, persistent session)."""

    client_id: str = Field(default="gronkoll-collector", min_length=1)
    shared_group: str | None = None  # MQTT 5: subscribe as $share/<group>/<filter>
    max_inflight: int = Field(default=1000, ge=1)
    reconnect_max_s: float = Field(default=60, ge=1)
    quarantine_keep_days: int = Field(default=30, ge=1)  # older entries are deleted
    subscriptions: list[MqttSubscription] = []


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


class SqliteStore(Strict):
    kind: Literal["sqlite"] = "sqlite"
    path: str = "gronkoll-data"
    state_url: str | None = None
    busy_timeout_s: float = Field(default=5, ge=0)


class InfluxdbStore(Strict):
    """InfluxDB (docs/influxdb.md): v2 write API (token, org, bucket) or v1 /write (database)."""

    kind: Literal["influxdb"]
    url: str = Field(pattern=r"^https?://[^\s/]+")
    api: Literal["v2", "v1"] = "v2"
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    spool_path: str = "spool.sqlite"
    spool_max_mb: float = Field(default=1024, gt=0)
    batch_size: int = Field(default=5000, ge=1)
    gzip: bool = True
    timeout_s: float = Field(default=10, gt=0)
    query_timeout_s: float = Field(default=120, gt=0)  # InfluxQL reads: a year takes seconds
    retry_max_s: float = Field(default=60, ge=0.1)
    path: str = "gronkoll-data"
    state_url: str | None = None

    @model_validator(mode="after")
    def _api_keys(self) -> InfluxdbStore:
        if self.api == "v2":
            missing = [k for k in ("org", "bucket", "token") if not getattr(self, k)]
            if missing:
                raise ValueError(f"api v2 needs {', '.join(missing)} (api v1 needs database)")
        elif not self.database:
            raise ValueError("api v1 needs database (api v2 needs org, bucket and token)")
        return self


class Factor(Strict):
    gco2e_per_kwh: float = Field(ge=0)
    source: str = Field(min_length=1)
    year: int | None = None


class HourlyFactors(Strict):
    path: str
    source: str = Field(min_length=1)
    applies_to: Literal["location_based", "market_based"] = "location_based"


LOCATION_DEFAULT = Factor(
    gco2e_per_kwh=90,
    year=2021,
    source=(
        "Nordic electricity mix with imports and exports, life-cycle, about 90 g CO2e/kWh: "
        "IVL Svenska Miljöinstitutet, SMED Rapport Nr 4 2021, for Naturvårdsverket"
    ),
)
MARKET_DEFAULT = Factor(
    gco2e_per_kwh=524.10,
    year=2023,
    source=(
        "Nordic residual mix 2023, 524.10 g CO2/kWh (direct CO2 only): Energimarknadsinspektionen "
        "(Ei), Residualmix; applies to electricity bought without guarantees of origin"
    ),
)


class Emissions(Strict):
    location_based: Factor = LOCATION_DEFAULT
    market_based: Factor = MARKET_DEFAULT
    hourly: HourlyFactors | None = None


class EnergySettings(Strict):
    max_gap_s: float = Field(default=900, gt=0)
    plausibility_margin: float = Field(default=0.1, ge=0)


class CollectorSettings(Strict):
    """Defaults for polling devices; a device's own snmp block may override some."""

    interval_s: float = Field(default=60, ge=1)
    jitter_s: float = Field(default=5, ge=0)
    timeout_s: float = Field(default=2, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    backoff_max_s: float = Field(default=900, ge=1)
    batch_size: int = Field(default=5000, ge=1)
    profiles_dir: str | None = None


class ApiSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


# -- Scheduled shutdowns (docs/shutdowns.md) ---------------------------------------------------


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


class Settings(Strict):
    municipality: Municipality
    sites: list[Site] = Field(min_length=1)
    groups: list[Group] = []
    devices: list[Device] = []
    power_profiles: dict[str, PowerProfile] = {}
    store: Annotated[SqliteStore | InfluxdbStore, Field(discriminator="kind")] = SqliteStore()
    emissions: Emissions = Emissions()
    energy: EnergySettings = EnergySettings()
    collector: CollectorSettings = CollectorSettings()
    mqtt: MqttSettings | None = None
    api: ApiSettings = ApiSettings()
    shutdown: ShutdownSettings = ShutdownSettings()

    # Not part of the file: where it was read from, for relative paths and messages.
    source: Path = Field(default=Path(DEFAULT_CONFIG_NAME), exclude=True)
    _device_index: dict[str, Device] = PrivateAttr(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self.source.resolve().parent

    @property
    def tz(self) -> ZoneInfo:
        """The municipality's time zone."""
        return ZoneInfo(self.municipality.timezone)

    @property
    def store_path(self) -> Path:
        """The embedded store's folder."""
        return (self.base_dir / self.store.path).resolve()

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state database."""
        if self.store.state_url:
            return self.store.state_url
        return f"sqlite:///{self.store_path / 'state.db'}"

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to the file's folder."""
        return (self.base_dir / path).resolve()

    @field_validator("store", mode="before")
    @classmethod
    def _store_kind_default(cls, value: object) -> object:
        # kind: sqlite is the default, so a store section may leave it out.
        if isinstance(value, dict) and "kind" not in value:
            return {**value, "kind": "sqlite"}
        return value

    @property
    def spool_path(self) -> Path | None:
        """The InfluxDB store's spool file, relative to the config file's folder; else None."""
        if isinstance(self.store, InfluxdbStore):
            return self.resolve(self.store.spool_path)
        return None

    def model_post_init(self, context: Any, /) -> None:
        self._device_index = {d.id: d for d in self.devices}

    def device(self, device_id: str) -> Device | None:
        """The device with this id, or None."""
        return self._device_index.get(device_id)

    def power_profile(self, device: Device) -> PowerProfile | None:
        """The device's power profile after its overrides, or None when it has none."""
        name = device.power_profile or device.kind
        base = self.power_profiles.get(name) or DEFAULT_POWER_PROFILES.get(name)
        if base is None:
            return device.power
        return base.merged(device.power)

    def rated_power_w(self, device: Device) -> float:
        """The highest power the device can plausibly draw, in W."""
        return device.rated_power_w or DEFAULT_RATED_POWER_W[device.kind]


def _path_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def invalid_config(
    err: ValidationError,
    source: Path,
    *,
    unknown_key: str = "unknown key",
    missing: dict[str, str] | None = None,
) -> ConfigError:
    """One 'file: key: problem' line per validation error, in the user's words.

    unknown_key is said of a key the model does not know; missing maps a top-level key to
    what to say when it is absent (else "required key is missing").
    """
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p != "source")
        if loc[:1] == ("store",) and loc[1:2] in (("sqlite",), ("influxdb",)):
            loc = loc[:1] + loc[2:]  # the union's tag is not a key in the file
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_key
        elif e["type"] == "missing":
            msg = (missing or {}).get(_path_text(loc), "required key is missing")
        elif e["type"] == "literal_error":
            msg = f"got {e.get('input')!r}; {msg[0].lower()}{msg[1:]}"
        lines.append(f"{source}: {_path_text(loc)}: {msg}")
    return ConfigError("\n".join(lines))


def _cross_check(settings: Settings) -> list[str]:
    """Reference and uniqueness problems pydantic cannot see, as 'key: problem' lines."""
    problems: list[str] = []

    def unique(items: list[Any], section: str) -> set[str]:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                problems.append(f"{section}[{i}].id: duplicate id {item.id!r}")
            seen.add(item.id)
        return seen

    sites = unique(settings.sites, "sites")
    groups = unique(settings.groups, "groups")
    unique(settings.devices, "devices")
    profiles = set(settings.power_profiles) | set(DEFAULT_POWER_PROFILES)
    for i, dev in enumerate(settings.devices):
        if dev.site not in sites:
            problems.append(
                f"devices[{i}].site: unknown site {dev.site!r} (known: {', '.join(sorted(sites))})"
            )
        if dev.group is not None and dev.group not in groups:
            known = ", ".join(sorted(groups)) or "none defined under groups"
            problems.append(f"devices[{i}].group: unknown group {dev.group!r} (known: {known})")
        parent = settings.device(dev.metered_by) if dev.metered_by is not None else None
        if dev.metered_by is not None and (parent is None or parent.kind != "meter"):
            meters = ", ".join(d.id for d in settings.devices if d.kind == "meter") or "none"
            problems.append(
                f"devices[{i}].metered_by: {dev.metered_by!r} is not a device of kind meter "
                f"(meters: {meters})"
            )
        elif parent is not None and parent.site != dev.site:
            problems.append(
                f"devices[{i}].metered_by: meter {parent.id!r} is on site {parent.site!r}, "
                f"not {dev.site!r}"
            )
        if dev.power_profile is not None and dev.power_profile not in profiles:
            problems.append(
                f"devices[{i}].power_profile: unknown power profile {dev.power_profile!r} "
                f"(known: {', '.join(sorted(profiles))})"
            )
    for i, group in enumerate(settings.groups):
        if group.site is not None and group.site not in sites:
            problems.append(f"groups[{i}].site: unknown site {group.site!r}")
    problems += shutdown_problems(settings)
    hourly = settings.emissions.hourly
    if hourly is not None and not settings.resolve(hourly.path).is_file():
        problems.append(f"emissions.hourly.path: no such file {settings.resolve(hourly.path)}")
    return problems


def load_yaml(text: str) -> Any:
    """Parse YAML safely, with libyaml when it is there (several times faster)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (both loaders are the safe ones)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $GRONKOLL_CONFIG, else ./gronkoll.yaml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def parse_settings(data: Any, source: Path) -> Settings:
    """Validate already-parsed YAML data; raise ConfigError naming file and key."""
    name = str(source)
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with municipality, sites and devices")
    try:
        settings = Settings.model_validate({**data, "source": source})
    except ValidationError as err:
        unknown = "unknown key (check the spelling; config/example.yaml lists every key)"
        raise invalid_config(err, source, unknown_key=unknown) from None
    problems = _cross_check(settings)
    if problems:
        raise ConfigError("\n".join(f"{name}: {p}" for p in problems))
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config file; raise ConfigError with a message for the user."""
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such config file (give one with -c/--config or ${CONFIG_ENV}; "
            "config/example.yaml is a starting point)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{source}: {where}not valid YAML: {problem}") from None
    return parse_settings(data, source)
