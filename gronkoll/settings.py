"""The configuration file: pydantic models, loading, and error messages that name file and key.

Each section's models live in a module of their own (settings_base, settings_devices,
settings_snmp, settings_mqtt, settings_store, settings_emissions, settings_shutdown), the
whole file's model in settings_model, its cross-checks in settings_checks and the loading in
settings_load; this module gathers them, so `from gronkoll.settings import X` serves them all.
"""

from __future__ import annotations

from gronkoll.settings_base import (
    DEVICE_KINDS,
    DeviceKind,
    Group,
    Identifier,
    Municipality,
    Site,
    SiteKind,
    Strict,
)
from gronkoll.settings_checks import cross_check
from gronkoll.settings_devices import (
    DEFAULT_POWER_PROFILES,
    DEFAULT_RATED_POWER_W,
    Device,
    PowerProfile,
)
from gronkoll.settings_emissions import (
    LOCATION_DEFAULT,
    MARKET_DEFAULT,
    Emissions,
    EnergySettings,
    Factor,
    HourlyFactors,
)
from gronkoll.settings_load import (
    CONFIG_ENV,
    config_path,
    invalid_config,
    load_settings,
    load_yaml,
    parse_settings,
)
from gronkoll.settings_model import DEFAULT_CONFIG_NAME, ApiSettings, Settings
from gronkoll.settings_mqtt import (
    BrokerConnection,
    DeviceMqtt,
    JsonField,
    JsonFormat,
    MqttFormat,
    MqttMapping,
    MqttSettings,
    MqttSubscription,
    MqttTls,
)
from gronkoll.settings_shutdown import (
    DEFAULT_COUNTERFACTUAL_ON_SHARE,
    Break,
    MaintenanceWindow,
    Policy,
    ShutdownSettings,
    WakeOnLan,
)
from gronkoll.settings_snmp import (
    AuthProtocol,
    CollectorSettings,
    PrivProtocol,
    SnmpSettings,
    SnmpVersion,
)
from gronkoll.settings_store import InfluxdbStore, SqliteStore

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_COUNTERFACTUAL_ON_SHARE",
    "DEFAULT_POWER_PROFILES",
    "DEFAULT_RATED_POWER_W",
    "DEVICE_KINDS",
    "LOCATION_DEFAULT",
    "MARKET_DEFAULT",
    "ApiSettings",
    "AuthProtocol",
    "Break",
    "BrokerConnection",
    "CollectorSettings",
    "Device",
    "DeviceKind",
    "DeviceMqtt",
    "Emissions",
    "EnergySettings",
    "Factor",
    "Group",
    "HourlyFactors",
    "Identifier",
    "InfluxdbStore",
    "JsonField",
    "JsonFormat",
    "MaintenanceWindow",
    "Municipality",
    "MqttFormat",
    "MqttMapping",
    "MqttSettings",
    "MqttSubscription",
    "MqttTls",
    "Policy",
    "PowerProfile",
    "PrivProtocol",
    "Settings",
    "ShutdownSettings",
    "Site",
    "SiteKind",
    "SnmpSettings",
    "SnmpVersion",
    "SqliteStore",
    "Strict",
    "WakeOnLan",
    "config_path",
    "cross_check",
    "invalid_config",
    "load_settings",
    "load_yaml",
    "parse_settings",
]
