"""BER coding of SNMP v1 and v2c messages: the requests Gronkoll sends, the answers it reads.

A message is SEQUENCE { version INTEGER, community OCTET STRING, PDU } (RFC 1157 section 4,
RFC 3416 section 3, RFC 1901); a PDU is a context-tagged SEQUENCE { request-id, error-status,
error-index, variable-bindings } with GetRequest [0], GetNextRequest [1], Response [2],
SetRequest [3], GetBulkRequest [5] (non-repeaters and max-repetitions in place of the error
fields), Report [8]. Only definite lengths and single-byte tags, as X.690 section 8.1 allows
and SNMP's restricted BER requires (RFC 3417 section 8). Values decode straight to the Python
values snmp_values.to_value gives for pysnmp's objects. A request's variable-bindings (each OID
with NULL) never change between polls, so they are encoded once and a request is a header, a
request-id and those bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gronkoll.collector.snmp_values import Value, oid_text, opaque_value, text_or_bytes
from gronkoll.errors import MalformedSnmpMessage

Oid = tuple[int, ...]
Varbind = tuple[Oid, Value | None]  # None: NULL, noSuchObject, noSuchInstance, endOfMibView

# Universal tags (X.690 8.3-8.19), SNMP application tags (RFC 2578 section 7.1, RFC 1155),
# v2c exceptions (RFC 3416 section 3) and PDU tags (RFC 3416 section 3, RFC 1157 4.1).
INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIME_TICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
UNSIGNED = {COUNTER32, GAUGE32, TIME_TICKS, COUNTER64, 0x47}  # 0x47: RFC 1442's UInteger32
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, GET_BULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8
_PDUS = {GET, GET_NEXT, RESPONSE, 0xA3, GET_BULK, 0xA6, 0xA7, REPORT}
VERSIONS = {"1": 0, "2c": 1}  # the message's version field (RFC 1157, RFC 1901)
_NULL = b"\x05\x00"
_MAX_OIDS = 20_000  # decoded OIDs kept for reuse: a poll's answers name the same few


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded SNMP v1/v2c message."""

    version: int
    community: bytes
    pdu: int
    request_id: int
    error_status: int  # non-repeaters in a GetBulkRequest
    error_index: int  # max-repetitions in a GetBulkRequest
    varbinds: list[Varbind]


def _length(n: int) -> bytes:
    if n < 0x80:  # short form (X.690 8.1.3.4); else long form with the octet count (8.1.3.5)
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One encoded value: tag, definite length, content."""
    return bytes((tag,)) + _length(len(content)) + content


def encode_integer(value: int, tag: int = INTEGER) -> bytes:
    """A two's complement integer in the fewest octets (X.690 8.3); for an unsigned application
    type a value with its top bit set gets a leading 0x00, as RFC 2578's types need."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_oid(oid: Sequence[int]) -> bytes:
    """An OBJECT IDENTIFIER (X.690 8.19): the first two arcs as 40 x first + second, each
    sub-identifier in base 128, every octet but the last with its top bit set."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or min(oid) < 0:
        raise ValueError(f"{oid_text(tuple(oid))} is not an OID BER can encode (X.690 8.19.4)")
    content = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        content += bytes(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(content))


def encode_value(tag: int, value: int | bytes | Sequence[int] | None) -> bytes:
    """A varbind value of the given tag: an int for integer types, bytes for OCTET STRING,
    IpAddress and Opaque, arcs for an OBJECT IDENTIFIER, None for NULL and the exceptions."""
    if tag == OBJECT_IDENTIFIER and isinstance(value, Sequence) and not isinstance(value, bytes):
        return encode_oid(value)
    if isinstance(value, int):
        return encode_integer(value, tag)
    if isinstance(value, bytes):
        return tlv(tag, value)
    return tlv(tag, b"")


def encode_varbinds(varbinds: Iterable[tuple[Sequence[int], bytes]]) -> bytes:
    """A variable-bindings list from (OID, encoded value) pairs."""
    return tlv(SEQUENCE, b"".join(tlv(SEQUENCE, encode_oid(o) + v) for o, v in varbinds))


def request_varbinds(oids: Iterable[Sequence[int]]) -> bytes:
    """A request's variable-bindings: each OID with NULL (RFC 3416 section 4.2)."""
    return encode_varbinds((oid, _NULL) for oid in oids)


def message_head(version: int, community: bytes) -> bytes:
    """The start of every message to one agent: version and community, encoded once."""
    return encode_integer(version) + tlv(OCTET_STRING, community)


def encode_message(
    head: bytes, pdu: int, request_id: int, varbinds: bytes, first: int = 0, second: int = 0
) -> bytes:
    """A whole message: head (message_head), PDU type, request-id, error-status and
    error-index (non-repeaters and max-repetitions for GetBulk) and encoded varbinds."""
    body = encode_integer(request_id) + encode_integer(first) + encode_integer(second) + varbinds
    return tlv(SEQUENCE, head + tlv(pdu, body))


class Decoder:
    """Decodes messages; keeps the OIDs it decoded, as answers to polls name the same ones."""

    def __init__(self) -> None:
        self._oids: dict[bytes, Oid] = {}

    def header(self, data: bytes) -> tuple[Message, int, int]:
        """Version, community, PDU type and request-id, and where the PDU's rest lies; the
        error fields and varbinds are left to ``body`` (zero and empty here)."""
        end = self._expect(data, 0, len(data), SEQUENCE)
        if end != len(data):
            raise MalformedSnmpMessage(f"{len(data) - end} bytes after the message")
        start = self._start
        version, start = self._integer(data, start, end)
        stop = self._expect(data, start, end, OCTET_STRING)
        community = data[self._start : stop]
        if stop >= end:
            raise MalformedSnmpMessage(f"message ends at byte {stop} where the PDU should be")
        pdu = data[stop]
        if pdu not in _PDUS:
            raise MalformedSnmpMessage(f"no SNMP PDU (tag 0x{pdu:02x})")
        pdu_end = self._expect(data, stop, end, pdu)
        if pdu_end != end:
            raise MalformedSnmpMessage("bytes after the PDU")
        request_id, start = self._integer(data, self._start, pdu_end)
        return Message(version, community, pdu, request_id, 0, 0, []), start, pdu_end

    def body(self, data: bytes, start: int, end: int) -> tuple[int, int, list[Varbind]]:
        """Error-status, error-index and the varbinds of the PDU after its request-id."""
        status, start = self._integer(data, start, end)
        index, start = self._integer(data, start, end)
        if self._expect(data, start, end, SEQUENCE) != end:
            raise MalformedSnmpMessage("bytes after the variable-bindings")
        start = self._start
        varbinds: list[Varbind] = []
        while start < end:
            stop = self._expect(data, start, end, SEQUENCE)
            inner = self._start
            name_end = self._expect(data, inner, stop, OBJECT_IDENTIFIER)
            name = self._oid(data[self._start : name_end])
            if name_end >= stop:
                raise MalformedSnmpMessage(f"no value for {oid_text(name)}")
            tag = data[name_end]
            value_end = self._expect(data, name_end, stop, tag)
            if value_end != stop:
                raise MalformedSnmpMessage(f"bytes after the value of {oid_text(name)}")
            varbinds.append((name, self._value(tag, data[self._start : value_end])))
            start = stop
        return status, index, varbinds

    def decode(self, data: bytes) -> Message:
        """A whole message."""
        head, start, end = self.header(data)
        status, index, varbinds = self.body(data, start, end)
        return Message(
            head.version, head.community, head.pdu, head.request_id, status, index, varbinds
        )

    _start = 0  # where the content of the value _expect read begins

    def _expect(self, data: bytes, at: int, limit: int, tag: int) -> int:
        """Reads the tag and length at ``at``; sets _start to the content, returns its end."""
        if at + 2 > limit:
            raise MalformedSnmpMessage(f"message ends at byte {at} where a value should be")
        if data[at] != tag:
            raise MalformedSnmpMessage(f"expected tag 0x{tag:02x}, got 0x{data[at]:02x} at {at}")
        length = data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4:
                raise MalformedSnmpMessage(f"unsupported length form 0x{length:02x} at {at - 1}")
            if at + count > limit:
                raise MalformedSnmpMessage(f"length runs past the end at byte {at}")
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        end = at + length
        if end > limit:
            raise MalformedSnmpMessage(f"a value of {length} bytes runs past the end at {at}")
        self._start = at
        return end

    def _integer(self, data: bytes, at: int, limit: int) -> tuple[int, int]:
        end = self._expect(data, at, limit, INTEGER)
        if end == self._start:
            raise MalformedSnmpMessage(f"empty INTEGER at byte {at}")
        return int.from_bytes(data[self._start : end], "big", signed=True), end

    def _oid(self, raw: bytes) -> Oid:
        found = self._oids.get(raw)
        if found is not None:
            return found
        if not raw or raw[-1] & 0x80:
            raise MalformedSnmpMessage("an OBJECT IDENTIFIER is empty or cut off")
        arcs: list[int] = []
        arc = 0
        for octet in raw:
            arc = (arc << 7) | (octet & 0x7F)
            if not octet & 0x80:
                arcs.append(arc)
                arc = 0
        first = min(arcs[0] // 40, 2)  # X.690 8.19.4: 0 and 1 take a second arc below 40
        oid = (first, arcs[0] - 40 * first, *arcs[1:])
        if len(self._oids) >= _MAX_OIDS:
            self._oids.clear()
        self._oids[raw] = oid
        return oid

    def _value(self, tag: int, raw: bytes) -> Value | None:
        if tag == INTEGER:
            if not raw:
                raise MalformedSnmpMessage("empty INTEGER value")
            return int.from_bytes(raw, "big", signed=True)
        if tag in UNSIGNED:
            # Unsigned (RFC 2578 7.1.6-7.1.10): encoders add 0x00 before a set top bit; one
            # that forgot it meant the unsigned number all the same.
            if not raw or len(raw) > 9:
                raise MalformedSnmpMessage(f"bad unsigned value of {len(raw)} bytes")
            return int.from_bytes(raw, "big")
        if tag == OCTET_STRING:
            return text_or_bytes(raw)
        if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
            return None
        if tag == OBJECT_IDENTIFIER:
            return oid_text(self._oid(raw))
        if tag == IP_ADDRESS:
            return ".".join(map(str, raw))
        if tag == OPAQUE:
            return opaque_value(raw)
        raise MalformedSnmpMessage(f"unknown value type 0x{tag:02x}")
