"""The whole config file's model: every section, and what the sections answer together."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, field_validator

from gronkoll.settings_base import Group, Municipality, Site, Strict
from gronkoll.settings_devices import (
    DEFAULT_POWER_PROFILES,
    DEFAULT_RATED_POWER_W,
    Device,
    PowerProfile,
)
from gronkoll.settings_emissions import Emissions, EnergySettings
from gronkoll.settings_mqtt import MqttSettings
from gronkoll.settings_shutdown import ShutdownSettings
from gronkoll.settings_snmp import CollectorSettings
from gronkoll.settings_store import InfluxdbStore, SqliteStore

DEFAULT_CONFIG_NAME = "gronkoll.yaml"


class ApiSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


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
