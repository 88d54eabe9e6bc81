"""The configuration file: pydantic models, loading, and error messages that name file and key."""

from __future__ import annotations

import os
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

from gronkoll.errors import ConfigError

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


class MqttSettings(Strict):
    """The MQTT broker Gronkoll subscribes to (QoS 1, persistent session)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="gronkoll-collector", min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTls | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(default=60, ge=5)
    session_expiry_s: int = Field(default=7 * 86400, ge=0)  # MQTT 5: how long the broker keeps us
    shared_group: str | None = None  # MQTT 5: subscribe as $share/<group>/<filter>
    max_inflight: int = Field(default=1000, ge=1)
    reconnect_max_s: float = Field(default=60, ge=1)
    quarantine_keep_days: int = Field(default=30, ge=1)  # older entries are deleted
    subscriptions: list[MqttSubscription] = []

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value


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


class SqliteStore(Strict):
    kind: Literal["sqlite"] = "sqlite"
    path: str = "gronkoll-data"
    state_url: str | None = None
    busy_timeout_s: float = Field(default=5, ge=0)


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


class Settings(Strict):
    municipality: Municipality
    sites: list[Site] = Field(min_length=1)
    groups: list[Group] = []
    devices: list[Device] = []
    power_profiles: dict[str, PowerProfile] = {}
    store: SqliteStore = SqliteStore()
    emissions: Emissions = Emissions()
    energy: EnergySettings = EnergySettings()
    collector: CollectorSettings = CollectorSettings()
    mqtt: MqttSettings | None = None
    api: ApiSettings = ApiSettings()

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
        lines = []
        for e in err.errors():
            loc = tuple(p for p in e["loc"] if p != "source")
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; config/example.yaml lists every key)"
            elif e["type"] == "missing":
                msg = "required key is missing"
            elif e["type"] == "literal_error":
                msg = f"got {e.get('input')!r}; {msg[0].lower()}{msg[1:]}"
            lines.append(f"{name}: {_path_text(loc)}: {msg}")
        raise ConfigError("\n".join(lines)) from None
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
