"""Config for MQTT: the broker, its subscriptions, and how each payload format is read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gronkoll.settings_base import Strict

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
