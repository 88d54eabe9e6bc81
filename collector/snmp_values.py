"""SNMP values as plain Python values, and numeric OIDs as text."""

from __future__ import annotations

import struct

from pyasn1.type import univ
from pysnmp.proto import rfc1902

Value = int | float | str | bytes
"""A value read from a device: counters and gauges are int, text is str, the rest bytes."""

# net-snmp's Opaque-wrapped floats (UCD-SNMP-MIB laLoadFloat and friends): an ASN.1
# extension tag 0x9f78 (float, 4 bytes) or 0x9f79 (double, 8 bytes) inside the Opaque.
_OPAQUE_FLOATS = {b"\x9f\x78\x04": ">f", b"\x9f\x79\x08": ">d"}


def parse_oid(oid: str) -> tuple[int, ...]:
    """The numeric OID as a tuple; a leading dot is allowed, names are not."""
    parts = oid.strip().removeprefix(".").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a numeric OID: {oid!r} (expected digits and dots)")
    return tuple(int(p) for p in parts)


def oid_text(oid: tuple[int, ...]) -> str:
    """The dotted form of an OID, without a leading dot."""
    return ".".join(map(str, oid))


def to_value(value: object) -> Value | None:
    """The Python value of an SNMP value; None for noSuchObject/noSuchInstance/endOfMibView."""
    # NoSuchObject and friends are a Null, which pyasn1 makes an OctetString, and IpAddress,
    # Opaque and Bits are OctetStrings too: the order of these checks matters.
    if isinstance(value, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks, ...
        return int(value)
    if isinstance(value, univ.Null):  # also noSuchObject, noSuchInstance, endOfMibView
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, rfc1902.Opaque):
        return opaque_value(value.asOctets())
    if isinstance(value, rfc1902.Bits):
        return bytes(value.asOctets())
    if isinstance(value, univ.OctetString):
        return text_or_bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):  # v1 answers come as pyasn1's own type
        return oid_text(tuple(value))
    raise TypeError(f"unexpected SNMP value type {type(value).__name__}")


def opaque_value(raw: bytes) -> Value:
    """An Opaque's value: a float when it wraps net-snmp's float or double, else its bytes."""
    fmt = _OPAQUE_FLOATS.get(raw[:3])
    if fmt is not None and len(raw) == 3 + struct.calcsize(fmt):
        return float(struct.unpack(fmt, raw[3:])[0])
    return raw


def text_or_bytes(raw: bytes) -> str | bytes:
    """An OCTET STRING as text when it is printable UTF-8, else as bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if text.isprintable() or all(c.isprintable() or c in "\t\r\n" for c in text):
        return text
    return raw
