"""Device profiles: what Gronkoll reads from a kind of device, as data (one YAML file each).

A profile lists MIB objects with the field (and so the unit) each becomes, the scale from the
raw value to that unit (fixed, or read per row: decimal digits, a power of ten), table or
scalar, which rows count (``where``, ``index_suffix``) and when a value is measured
(``valid_if``, ``not_measured``, ``min_raw``), how rows form the device's total, and counter
width. Profiles ship in ``config/profiles/`` (installed as ``gronkoll.config``) and a site may
add its own in ``collector.profiles_dir``; a site profile with the same id replaces the
shipped one. docs/snmp.md ("Device profiles") describes every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from gronkoll.errors import ConfigError
from gronkoll.fields import FIELDS
from gronkoll.settings import Settings, Strict, invalid_config, load_yaml

OID = r"^[0-2](\.(0|[1-9][0-9]*))+$"
_OID_RE = re.compile(OID)


def _check_oid(value: str) -> str:
    value = value.strip().lstrip(".")
    if not _OID_RE.match(value):
        raise ValueError(f"{value!r} is not a numeric OID (e.g. 1.3.6.1.2.1.1.2.0)")
    return value


class Condition(Strict):
    """A test on another object of the same row (tables) or an instance (scalars)."""

    object: str = Field(min_length=1)  # the MIB object's name, e.g. entPhySensorType
    oid: str  # a column of the same table, or for a scalar metric the instance OID
    equals: list[int] = Field(min_length=1)  # raw values that pass

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        return _check_oid(value)

    def describe(self) -> str:
        """The condition as text, e.g. entPhySensorType in [6]."""
        return f"{self.object} in {self.equals}"


class ScaleExponent(Strict):
    """A per-row scale read from the device: value x base ** (raw + offset)."""

    object: str = Field(min_length=1)  # e.g. entPhySensorScale
    oid: str
    base: float = Field(gt=0)  # 1000 for SI prefixes (EntitySensorDataScale)
    offset: int = 0  # -9: units(9) means x 1

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        return _check_oid(value)


class Metric(Strict):
    """One MIB object and the reading field it becomes."""

    field: str
    oid: str
    object: str = Field(min_length=1)  # the MIB object's name, e.g. rPDU2DeviceStatusPower
    kind: Literal["gauge", "counter"] = "gauge"
    scale: float = 1.0  # raw value x scale = value in the field's unit
    scale_digits_oid: str | None = None  # per-row decimal digits: value / 10**digits (PDU2-MIB)
    scale_exponent: ScaleExponent | None = None  # per-row power of base (ENTITY-SENSOR-MIB)
    table: bool = False  # walk the column: one value per row index
    total: Literal["none", "sum", "first"] = "none"  # for tables: form the device's field
    where: list[Condition] = []  # tables: rows failing any of these are not this metric's
    index_suffix: str | None = None  # tables: only rows whose index ends so; named without it
    valid_if: list[Condition] = []  # rows (or the scalar) failing any of these: not measured
    counter_bits: Literal[32, 64] | None = None
    not_measured: list[int] = []  # raw values that mean "no value" (e.g. 65535, -1)
    min_raw: float | None = None  # raw values below this mean "no value"
    transform: Literal["none", "nonzero"] = "none"  # nonzero: 1 when raw != 0, else 0
    index_oid: str | None = None  # a column that names each row (for row labels)

    @field_validator("oid", "scale_digits_oid", "index_oid")
    @classmethod
    def _oid(cls, value: str | None) -> str | None:
        return None if value is None else _check_oid(value)

    @field_validator("index_suffix")
    @classmethod
    def _suffix(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*", value):
            raise ValueError(f"{value!r} is not an OID index such as 5 or 1.5")
        return value

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in FIELDS:
            raise ValueError(
                f"unknown field {value!r}: a field's name carries its unit "
                f"(known: {', '.join(sorted(FIELDS))})"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        spec = FIELDS[self.field]
        if self.kind == "counter" and spec.kind != "counter":
            raise ValueError(f"field {self.field!r} is a {spec.kind}, not a counter")
        if spec.kind == "counter" and self.kind != "counter":
            raise ValueError(f"field {self.field!r} is a counter: set kind: counter")
        if self.total != "none" and not self.table:
            raise ValueError("total applies to table metrics only")
        if self.counter_bits is not None and self.kind != "counter":
            raise ValueError("counter_bits applies to counters only")
        if not self.table:
            for key in ("where", "index_suffix", "index_oid"):
                if getattr(self, key):
                    raise ValueError(f"{key} applies to table metrics only")
        return self

    @property
    def counter_modulus_wh(self) -> float | None:
        """Where this counter wraps, in its field's unit: 2**counter_bits x scale.

        A PDU2-MIB counter read with decimal digits wraps at that divided by 10**digits.
        """
        if self.counter_bits is None:
            return None
        return float(2**self.counter_bits) * self.scale

    def device_field(self) -> bool:
        """Whether this metric gives the device's own field (not one value per row)."""
        return not self.table or self.total != "none"


class Probe(Strict):
    """An object whose presence identifies the kind of device when sysObjectID cannot."""

    mib: str = Field(min_length=1)  # e.g. UPS-MIB
    object: str = Field(min_length=1)  # e.g. upsIdentModel
    oid: str  # walked: any object under it counts as an answer

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        return _check_oid(value)


class Match(Strict):
    """How a device is recognised."""

    sys_object_id: list[str] = []  # sysObjectID prefixes (whole arcs); the longest wins
    probe: list[Probe] = []  # tried when sysObjectID is generic or matches no profile
    probe_order: int = 100  # profiles are probed in this order (then by id)

    @field_validator("sys_object_id")
    @classmethod
    def _oids(cls, values: list[str]) -> list[str]:
        return [_check_oid(v) for v in values]


class Profile(Strict):
    """A kind of device and the MIB objects Gronkoll reads from it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    mib: str = Field(min_length=1)  # the MIB(s) the objects come from
    verified: str = Field(min_length=1)  # how scales and units were checked against the MIB
    match: Match = Match()
    metrics: list[Metric] = Field(min_length=1)

    def power_total(self) -> Metric | None:
        """The metric that gives the device's total power_w, if any (the first of several)."""
        for m in self.metrics:
            if m.field == "power_w" and m.device_field():
                return m
        return None

    def energy_counter(self) -> Metric | None:
        """The metric that gives the device's energy_wh_total, if any (the first of several)."""
        for m in self.metrics:
            if m.field == "energy_wh_total" and m.device_field():
                return m
        return None

    def counter_modulus_wh(self) -> float | None:
        """Where the device's energy_wh_total wraps, in Wh; None: a decrease is a reset."""
        counter = self.energy_counter()
        return counter.counter_modulus_wh if counter is not None else None


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Every known profile by id, and where each came from."""

    profiles: dict[str, Profile]
    sources: dict[str, Path]

    def get(self, profile_id: str) -> Profile | None:
        """The profile with this id, or None."""
        return self.profiles.get(profile_id)


def shipped_dir() -> Path:
    """The folder of the profiles that ship with Gronkoll."""
    return Path(str(resources.files("gronkoll.config") / "profiles"))


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; ConfigError naming the file and key otherwise."""
    try:
        data: Any = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with id, name, mib, verified and metrics")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as err:
        raise invalid_config(err, path) from None
    if profile.id != path.stem:
        raise ConfigError(f"{path}: id: {profile.id!r} must match the file name {path.stem!r}")
    return profile


def load_profiles(settings: Settings | None = None) -> ProfileSet:
    """The shipped profiles, then the site's own (collector.profiles_dir) over them."""
    folders = [shipped_dir()]
    if settings is not None and settings.collector.profiles_dir:
        own = settings.resolve(settings.collector.profiles_dir)
        if not own.is_dir():
            raise ConfigError(f"{settings.source}: collector.profiles_dir: no such folder {own}")
        folders.append(own)
    profiles: dict[str, Profile] = {}
    sources: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            profile = load_profile(path)
            profiles[profile.id] = profile
            sources[profile.id] = path
    return ProfileSet(profiles=profiles, sources=sources)


def check_device_profiles(settings: Settings, profiles: ProfileSet) -> None:
    """Refuse a device that names a profile nobody has."""
    problems = []
    for i, device in enumerate(settings.devices):
        if device.profile is not None and profiles.get(device.profile) is None:
            problems.append(
                f"{settings.source}: devices[{i}].profile: unknown profile {device.profile!r} "
                f"(known: {', '.join(sorted(profiles.profiles))})"
            )
    if problems:
        raise ConfigError("\n".join(problems))
