"""One device's SNMP address and credentials, and their pysnmp form for v3; secrets never print."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    UsmUserData,
)

from gronkoll.settings import (
    AuthProtocol,
    CollectorSettings,
    PrivProtocol,
    SnmpSettings,
    SnmpVersion,
)

# Our names (as net-snmp spells them) to pysnmp's protocol ids. SHA-256 is
# usmHMAC192SHA256AuthProtocol and SHA-512 usmHMAC384SHA512AuthProtocol (RFC 7860).
AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA-256": USM_AUTH_HMAC192_SHA256,
    "SHA-512": USM_AUTH_HMAC384_SHA512,
}

# AES-192 and AES-256 have no RFC. net-snmp's "AES-192"/"AES-256" stretch a short localized
# key as draft-blumenthal-aes-usm-04 says (pysnmp's *_BLUMENTHAL ids); Cisco-style agents
# ("AES-192-C" in net-snmp) use Reeder's 3DES stretching, pysnmp's USM_PRIV_CFB192_AES.
# The two differ only when the auth hash is shorter than the AES key (MD5, SHA).
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": USM_PRIV_CBC56_DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES-128": USM_PRIV_CFB128_AES,
    "AES-192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256": USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES-192-C": USM_PRIV_CFB192_AES,  # Cisco-style (Reeder) key extension
    "AES-256-C": USM_PRIV_CFB256_AES,
}


@dataclass(frozen=True, kw_only=True)
class SnmpTarget:
    """Where and how to reach one device over SNMP; its repr and str never show a secret."""

    device_id: str  # names the device in every error message
    host: str
    port: int = 161
    version: SnmpVersion = "2c"
    community: str = field(default="", repr=False)
    user: str = ""
    auth_protocol: AuthProtocol | None = None
    auth_key: str = field(default="", repr=False)
    priv_protocol: PrivProtocol | None = None
    priv_key: str = field(default="", repr=False)
    context: str = ""
    timeout_s: float = 2.0
    retries: int = 1

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"{self}: {problem}")

    def _problem(self) -> str | None:
        if self.version in ("1", "2c"):
            return None if self.community else f"SNMP v{self.version} needs a community"
        if not self.user:
            return "SNMP v3 needs a user"
        if (self.auth_protocol is None) != (not self.auth_key):
            return "SNMP v3 auth_protocol and auth_key go together"
        if (self.priv_protocol is None) != (not self.priv_key):
            return "SNMP v3 priv_protocol and priv_key go together"
        if self.priv_protocol is not None and self.auth_protocol is None:
            return "SNMP v3 privacy needs authentication"
        return None

    @classmethod
    def from_settings(
        cls, device_id: str, snmp: SnmpSettings, defaults: CollectorSettings
    ) -> SnmpTarget:
        """The target for a device's snmp block, with the collector's timeout and retries."""

        def secret(value: Any) -> str:
            return value.get_secret_value() if value is not None else ""

        return cls(
            device_id=device_id,
            host=snmp.host,
            port=snmp.port,
            version=snmp.version,
            community=secret(snmp.community),
            user=snmp.user or "",
            auth_protocol=snmp.auth_protocol,
            auth_key=secret(snmp.auth_key),
            priv_protocol=snmp.priv_protocol,
            priv_key=secret(snmp.priv_key),
            context=snmp.context,
            timeout_s=snmp.timeout_s if snmp.timeout_s is not None else defaults.timeout_s,
            retries=snmp.retries if snmp.retries is not None else defaults.retries,
        )

    def __str__(self) -> str:
        return f"{self.device_id} ({self.address})"

    @property
    def address(self) -> str:
        """host:port, with an IPv6 address in brackets."""
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"

    @property
    def is_ipv6(self) -> bool:
        """Whether host is an IPv6 address (not a name)."""
        return ":" in self.host

    @property
    def is_ip(self) -> bool:
        """Whether host is an IP address, so nothing needs resolving."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def security_level(self) -> str:
        """The SNMP v3 security level: noAuthNoPriv, authNoPriv or authPriv."""
        if self.priv_protocol is not None:
            return "authPriv"
        return "authNoPriv" if self.auth_protocol is not None else "noAuthNoPriv"

    def secrets(self) -> tuple[str, ...]:
        """The secret strings of this target, to scrub from any text shown to people."""
        return tuple(s for s in (self.community, self.auth_key, self.priv_key) if s)

    def credentials(self) -> tuple[str, ...]:
        """What identifies this target's credentials (pysnmp keeps a v3 user as one row per
        name, so two sets of keys for one user need two engines)."""
        if self.version != "3":
            return ("community", self.version, self.community)
        return (
            "usm",
            self.user,
            self.auth_protocol or "",
            self.auth_key,
            self.priv_protocol or "",
            self.priv_key,
        )

    def auth_data(self) -> UsmUserData:
        """The pysnmp credentials of a v3 target (v1 and v2c do not go through pysnmp)."""
        if self.version != "3":
            raise ValueError(f"{self}: only SNMP v3 targets have pysnmp credentials")
        kwargs: dict[str, Any] = {}
        if self.auth_protocol is not None:
            kwargs.update(authKey=self.auth_key, authProtocol=AUTH_PROTOCOLS[self.auth_protocol])
        if self.priv_protocol is not None:
            kwargs.update(privKey=self.priv_key, privProtocol=PRIV_PROTOCOLS[self.priv_protocol])
        # The level is the device's setting; docs/snmp.md recommends authPriv.
        return UsmUserData(self.user, **kwargs)  # noqa: S509
