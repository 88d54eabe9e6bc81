"""Config for SNMP: how to reach one device, and the collector's polling defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gronkoll.settings_base import Strict

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
