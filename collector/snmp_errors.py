"""pysnmp's failures as Gronkoll's errors, each naming the device, its address and the OIDs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pysnmp.proto import errind

from gronkoll.collector.snmp_target import SnmpTarget
from gronkoll.errors import (
    DeviceError,
    DeviceUnreachable,
    NoSuchObject,
    SnmpAuthError,
    SnmpError,
)

# RFC 3416 error-status values (v1 uses 0-5).
TOO_BIG = 1
NO_SUCH_NAME = 2
AUTHORIZATION_ERROR = 16
_STATUS_NAMES = (
    "noError tooBig noSuchName badValue readOnly genErr noAccess wrongType wrongLength "
    "wrongEncoding wrongValue noCreation inconsistentValue resourceUnavailable commitFailed "
    "undoFailed authorizationError notWritable inconsistentName"
).split()

_SHOWN_OIDS = 3


@dataclass(frozen=True, slots=True)
class Request:
    """One SNMP request to one device, as error messages describe it."""

    target: SnmpTarget
    operation: str  # "GET", "GETBULK walk", "GETNEXT walk"
    oids: Sequence[str]

    def __str__(self) -> str:
        shown = ", ".join(self.oids[:_SHOWN_OIDS])
        more = len(self.oids) - _SHOWN_OIDS
        if more > 0:
            shown += f" and {more} more"
        return f"SNMP v{self.target.version} {self.operation} of {shown}"

    def scrub(self, text: str) -> str:
        """The text with any community or key of the target blotted out."""
        for secret in self.target.secrets():
            text = text.replace(secret, "***")
        return text


def timed_out(request: Request) -> DeviceUnreachable:
    """No answer after every try."""
    target = request.target
    tries = target.retries + 1
    why = (
        "the host is down or the community is wrong"
        if target.version in ("1", "2c")
        else "the host is down or does not speak SNMP on this port"
    )
    return DeviceUnreachable(
        f"{target}: no answer to {request} after {tries} "
        f"{'try' if tries == 1 else 'tries'} of {target.timeout_s:g} s; {why}"
    )


def v3_dropped(request: Request) -> DeviceError:
    """A v3 agent answers, but silently dropped this request (it cannot decrypt it, or the
    context is unknown: net-snmp answers neither with a report)."""
    target = request.target
    reasons = []
    if target.priv_protocol is not None:
        reasons.append(
            f"wrong priv key or priv protocol ({target.priv_protocol}) for user {target.user!r}"
        )
    if target.context:
        reasons.append(f"the agent has no context {target.context!r}")
    message = (
        f"{target}: no answer to {request}, though the agent answers other SNMP v3 "
        f"requests: {', or '.join(reasons)}"
    )
    if target.priv_protocol is not None:
        return SnmpAuthError(message)
    return SnmpError(message)


def from_indication(request: Request, indication: errind.ErrorIndication) -> DeviceError:
    """The error for a pysnmp error indication other than a timeout."""
    target = request.target
    if isinstance(indication, errind.UnknownUserName):
        reason = f"the agent has no user {target.user!r} (wrong user name)"
    elif isinstance(indication, errind.WrongDigest):
        reason = (
            f"wrong auth key or auth protocol ({target.auth_protocol}) for user {target.user!r}"
        )
    elif isinstance(indication, errind.DecryptionError):
        reason = (
            f"wrong priv key or priv protocol ({target.priv_protocol}) for user {target.user!r}"
        )
    elif isinstance(indication, errind.UnsupportedSecurityLevel):
        reason = (
            f"the agent does not allow user {target.user!r} at {target.security_level} "
            "(check which of auth_protocol and priv_protocol the agent's user has)"
        )
    else:
        return SnmpError(f"{target}: {request} failed: {request.scrub(str(indication))}")
    return SnmpAuthError(f"{target}: {request} refused: {reason}")


def from_status(request: Request, status: Any, index: Any) -> DeviceError:
    """The error for an error-status in the agent's response."""
    code = int(status)
    name = _STATUS_NAMES[code] if 0 <= code < len(_STATUS_NAMES) else f"error {code}"
    position = int(index)
    where = ""
    if 1 <= position <= len(request.oids):
        where = f" (at {request.oids[position - 1]})"
    target = request.target
    if code == AUTHORIZATION_ERROR:
        return SnmpAuthError(
            f"{target}: the agent answered authorizationError to {request}{where}: its access "
            f"rule for this user or community needs another security level or excludes the OID"
        )
    return SnmpError(f"{target}: the agent answered {name} to {request}{where}")


def malformed(request: Request, err: Exception) -> SnmpError:
    """The agent's answer matched the request but does not decode."""
    return SnmpError(
        f"{request.target}: the answer to {request} is not a valid SNMP message: "
        f"{request.scrub(str(err))}"
    )


def from_library(request: Request, err: Exception) -> DeviceError:
    """The error for an exception pysnmp raised instead of reporting."""
    return SnmpError(f"{request.target}: {request} failed: {request.scrub(str(err))}")


def unresolvable(target: SnmpTarget, err: Exception) -> DeviceUnreachable:
    """The host name does not resolve."""
    cause = err.__cause__ or err.__context__
    reason = getattr(err, "strerror", None) or getattr(cause, "strerror", None) or str(err)
    return DeviceUnreachable(f"{target}: cannot resolve host {target.host!r}: {reason}")


def no_such_object(target: SnmpTarget, oid: str) -> NoSuchObject:
    """The device has no object at this OID."""
    return NoSuchObject(f"{target}: the device has no object {oid}")
