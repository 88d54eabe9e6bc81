"""collector.snmp_ber against pysnmp's own coder as the reference: what we encode pysnmp reads
back, what pysnmp encodes we decode to the values to_value gives, and bad datagrams raise our
error and nothing else."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto import api, rfc1902, rfc1905

from gronkoll.collector import snmp_ber
from gronkoll.collector.snmp_ber import Decoder
from gronkoll.collector.snmp_values import to_value
from gronkoll.errors import MalformedSnmpMessage

V1, V2C = api.SNMP_VERSION_1, api.SNMP_VERSION_2C
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
OIDS = st.tuples(
    st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**32 - 1), max_size=14)
).map(lambda t: (t[0], t[1], *t[2]))


def pysnmp_message(
    version: int,
    varbinds: list[tuple[tuple[int, ...], Any]],
    *,
    pdu_class: str = "GetResponsePDU",
    request_id: int = 1234,
    community: bytes = b"public",
    status: int = 0,
    index: int = 0,
) -> bytes:
    """A message as pysnmp encodes it."""
    proto = api.PROTOCOL_MODULES[version]
    pdu = getattr(proto, pdu_class)()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, request_id)
    proto.apiPDU.set_error_status(pdu, status)
    proto.apiPDU.set_error_index(pdu, index)
    proto.apiPDU.set_varbinds(pdu, varbinds)
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def pysnmp_decode(version: int, data: bytes) -> tuple[Any, Any]:
    """(message, PDU) as pysnmp decodes them; the whole datagram must be used."""
    proto = api.PROTOCOL_MODULES[version]
    message, rest = decoder.decode(data, asn1Spec=proto.Message())
    assert not rest
    return message, proto.apiMessage.get_pdu(message)


NET_SNMP_FLOAT = b"\x9f\x78\x04" + struct.pack(">f", 0.25)  # UCD-SNMP-MIB laLoadFloat
NET_SNMP_DOUBLE = b"\x9f\x79\x08" + struct.pack(">d", -2.5)
VALUES: list[Any] = [
    rfc1902.Integer32(0),
    rfc1902.Integer32(127),
    rfc1902.Integer32(128),
    rfc1902.Integer32(-1),
    rfc1902.Integer32(-128),
    rfc1902.Integer32(-129),
    rfc1902.Integer32(2**31 - 1),
    rfc1902.Integer32(-(2**31)),
    rfc1902.OctetString(b""),
    rfc1902.OctetString(b"APC Rack PDU"),
    rfc1902.OctetString("Öppettider för skolan".encode()),
    rfc1902.OctetString(b"\x00\x1b\x2c\xff\x01\x02"),  # a MAC address: bytes
    rfc1902.OctetString(b"x" * 300),  # a long-form length
    rfc1902.OctetString(b"y" * 40_000),  # two length octets
    rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 6)),
    rfc1902.ObjectIdentifier((2, 999, 3)),  # the first two arcs in one sub-identifier, > 127
    rfc1902.ObjectIdentifier((0, 39)),
    rfc1902.ObjectIdentifier((1, 3, 2**32 - 1, 16384, 128, 127)),
    rfc1902.IpAddress("10.20.0.11"),
    rfc1902.IpAddress("255.255.255.255"),
    rfc1902.Counter32(0),
    rfc1902.Counter32(2**31),  # top bit set: a leading 0x00
    rfc1902.Counter32(2**32 - 1),
    rfc1902.Gauge32(4_294_967_295),
    rfc1902.Unsigned32(65535),
    rfc1902.TimeTicks(123_456),
    rfc1902.Counter64(0),
    rfc1902.Counter64(2**63),
    rfc1902.Counter64(2**64 - 1),
    rfc1902.Opaque(NET_SNMP_FLOAT),
    rfc1902.Opaque(NET_SNMP_DOUBLE),
    rfc1902.Opaque(b"\x01\x02\x03"),
    rfc1902.Bits(b"\x80\x01"),
    rfc1902.Null(""),
]
V2C_ONLY = [rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView]


@pytest.mark.parametrize("value", VALUES + V2C_ONLY, ids=lambda v: f"{type(v).__name__}")
def test_values_pysnmp_encodes_decode_to_what_to_value_gives(value: Any) -> None:
    varbinds = [(SYS_OBJECT_ID, value), ((1, 3, 6, 1, 2, 1, 1, 5, 0), rfc1902.Integer32(7))]
    data = pysnmp_message(V2C, varbinds, request_id=2**31 - 1, status=5, index=2)
    message = Decoder().decode(data)
    assert message.version == 1 and message.community == b"public"
    assert message.pdu == snmp_ber.RESPONSE
    assert (message.request_id, message.error_status, message.error_index) == (2**31 - 1, 5, 2)
    assert message.varbinds == [(SYS_OBJECT_ID, to_value(value)), ((1, 3, 6, 1, 2, 1, 1, 5, 0), 7)]


@pytest.mark.parametrize(
    "value",
    [v for v in VALUES if not isinstance(v, rfc1902.Counter64)],  # SNMPv1 has no Counter64
    ids=lambda v: f"{type(v).__name__}",
)
def test_v1_messages_decode_too(value: Any) -> None:
    data = pysnmp_message(V1, [(SYS_OBJECT_ID, value)], request_id=-5, status=2, index=1)
    message = Decoder().decode(data)
    assert (message.version, message.request_id, message.error_status) == (0, -5, 2)
    assert message.varbinds == [(SYS_OBJECT_ID, to_value(value))]


@pytest.mark.parametrize("value", VALUES + V2C_ONLY, ids=lambda v: f"{type(v).__name__}")
def test_values_we_encode_pysnmp_decodes_to_the_same_value(value: Any) -> None:
    tag = value.tagSet[0][2] | value.tagSet[0][0]  # the identifier octet: class | number
    if isinstance(value, rfc1902.ObjectIdentifier):
        raw: Any = tuple(value)
    elif isinstance(value, univ.Integer):  # every integer type, signed or not
        raw = int(value)
    elif isinstance(value, rfc1902.Null) or value in V2C_ONLY:
        raw = None
    else:
        raw = value.asOctets()
    head = snmp_ber.message_head(1, b"public")
    varbinds = snmp_ber.encode_varbinds([(SYS_OBJECT_ID, snmp_ber.encode_value(tag, raw))])
    data = snmp_ber.encode_message(head, snmp_ber.RESPONSE, 99, varbinds)
    _, pdu = pysnmp_decode(V2C, data)
    ((name, decoded),) = api.v2c.apiPDU.get_varbinds(pdu)
    assert tuple(name) == SYS_OBJECT_ID
    assert decoded.tagSet == value.tagSet
    assert to_value(decoded) == to_value(value)


@pytest.mark.parametrize(
    ("operation", "pdu_class"),
    [(snmp_ber.GET, "GetRequestPDU"), (snmp_ber.GET_NEXT, "GetNextRequestPDU")],
)
@pytest.mark.parametrize("version", [V1, V2C])
def test_requests_we_encode_are_what_pysnmp_reads(
    operation: int, pdu_class: str, version: int
) -> None:
    oids = [SYS_OBJECT_ID, (1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 4, 3, 1, 5, 1), (2, 100, 3)]
    head = snmp_ber.message_head(version, b"pdu-0001")
    data = snmp_ber.encode_message(head, operation, 424242, snmp_ber.request_varbinds(oids))
    message, pdu = pysnmp_decode(version, data)
    proto = api.PROTOCOL_MODULES[version]
    assert bytes(proto.apiMessage.get_community(message)) == b"pdu-0001"
    assert isinstance(pdu, getattr(proto, pdu_class))
    assert int(proto.apiPDU.get_request_id(pdu)) == 424242
    varbinds = proto.apiPDU.get_varbinds(pdu)
    assert [tuple(name) for name, _ in varbinds] == oids
    assert all(isinstance(value, univ.Null) for _, value in varbinds)
    # and pysnmp's own encoding of the same request is byte for byte ours
    assert data == pysnmp_message(
        version,
        [(oid, rfc1902.Null("")) for oid in oids],
        pdu_class=pdu_class,
        request_id=424242,
        community=b"pdu-0001",
    )


@settings(max_examples=200, deadline=None)
@given(
    oids=st.lists(OIDS, min_size=1, max_size=30),
    request_id=st.integers(0, 2**31 - 1),
    repetitions=st.integers(0, 2**31 - 1),
    community=st.binary(max_size=200),
)
def test_getbulk_requests_round_trip_through_pysnmp(
    oids: list[tuple[int, ...]], request_id: int, repetitions: int, community: bytes
) -> None:
    head = snmp_ber.message_head(1, community)
    varbinds = snmp_ber.request_varbinds(oids)
    data = snmp_ber.encode_message(head, snmp_ber.GET_BULK, request_id, varbinds, 0, repetitions)
    message, pdu = pysnmp_decode(V2C, data)
    assert isinstance(pdu, api.v2c.GetBulkRequestPDU)
    assert bytes(api.v2c.apiMessage.get_community(message)) == community
    assert int(api.v2c.apiBulkPDU.get_request_id(pdu)) == request_id
    assert int(api.v2c.apiBulkPDU.get_non_repeaters(pdu)) == 0
    assert int(api.v2c.apiBulkPDU.get_max_repetitions(pdu)) == repetitions
    assert [tuple(n) for n, _ in api.v2c.apiBulkPDU.get_varbinds(pdu)] == oids
    decoded = Decoder().decode(data)  # and our decoder reads its own requests
    assert (decoded.request_id, decoded.error_index) == (request_id, repetitions)
    assert [name for name, _ in decoded.varbinds] == oids


@settings(max_examples=200, deadline=None)
@given(
    integers=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5),
    counters=st.lists(st.integers(0, 2**64 - 1), max_size=5),
    strings=st.lists(st.binary(max_size=300), max_size=5),
    oid=OIDS,
)
def test_any_values_pysnmp_encodes_decode_as_to_value_says(
    integers: list[int], counters: list[int], strings: list[bytes], oid: tuple[int, ...]
) -> None:
    values: list[Any] = [rfc1902.Integer32(i) for i in integers]
    values += [rfc1902.Counter64(c) for c in counters]
    values += [rfc1902.OctetString(s) for s in strings]
    values.append(rfc1902.ObjectIdentifier(oid))
    varbinds = [((1, 3, 6, 1, 2, 1, number), value) for number, value in enumerate(values)]
    message = Decoder().decode(pysnmp_message(V2C, varbinds))
    assert message.varbinds == [(name, to_value(value)) for name, value in varbinds]


@pytest.mark.parametrize(
    "oid", [(), (1,), (3, 1), (1, 40), (0, 40, 1), (1, 3, -1)], ids=lambda o: repr(o)
)
def test_oids_that_cannot_be_encoded_are_refused(oid: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="not an OID BER can encode"):
        snmp_ber.encode_oid(oid)


def answer() -> bytes:
    varbinds = [(SYS_OBJECT_ID, v) for v in VALUES[:14]] + [(SYS_OBJECT_ID, V2C_ONLY[2])]
    return pysnmp_message(V2C, varbinds, request_id=70_000)


def test_every_truncation_of_an_answer_is_our_error() -> None:
    data = answer()
    decoder_ = Decoder()
    for size in range(len(data)):
        with pytest.raises(MalformedSnmpMessage):
            decoder_.decode(data[:size])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "ends at byte 0"),
        (b"\x30", "ends at byte 0"),
        (b"\x04\x00", "expected tag 0x30"),
        (b"\x30\x80\x02\x01\x01\x00\x00", "unsupported length form 0x80"),  # indefinite
        (b"\x30\x85\x01\x00\x00\x00\x00", "unsupported length form 0x85"),
        (b"\x30\x03\x02\x01\x01\xff", "bytes after the message"),
        (b"\x30\x05\x02\x00\x04\x01a", "empty INTEGER"),
        (b"\x30\x06\x02\x01\x01\x04\x01a", "ends at byte 8"),
        (b"\x30\x08\x02\x01\x01\x04\x01a\x30\x00", "no SNMP PDU (tag 0x30)"),
    ],
)
def test_malformed_datagrams_say_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(MalformedSnmpMessage, match=says.replace("(", r"\(").replace(")", r"\)")):
        Decoder().decode(data)


def test_bad_values_inside_a_good_message_are_our_error() -> None:
    def response(varbind: bytes) -> bytes:
        body = snmp_ber.tlv(snmp_ber.SEQUENCE, snmp_ber.tlv(snmp_ber.SEQUENCE, varbind))
        head = snmp_ber.message_head(1, b"public")
        return snmp_ber.encode_message(head, snmp_ber.RESPONSE, 5, body)

    oid = snmp_ber.encode_oid(SYS_OBJECT_ID)
    cases = {
        oid: "no value for 1.3.6.1.2.1.1.2.0",
        oid + b"\x47\x00": "bad unsigned value of 0 bytes",
        oid + b"\x46\x0a" + b"\x01" * 10: "bad unsigned value of 10 bytes",
        oid + b"\x02\x00": "empty INTEGER value",
        oid + b"\x45\x01\x00": "unknown value type 0x45",
        b"\x06\x00\x05\x00": "OBJECT IDENTIFIER is empty",
        b"\x06\x02\x2b\x86\x05\x00": "cut off",
        oid + b"\x05\x00\x05\x00": "bytes after the value of 1.3.6.1.2.1.1.2.0",
    }
    for varbind, says in cases.items():
        with pytest.raises(MalformedSnmpMessage, match=says):
            Decoder().decode(response(varbind))


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
@example(data=b"\x30\x84\xff\xff\xff\xff")
def test_garbage_is_our_error_or_a_message_never_a_crash(data: bytes) -> None:
    try:
        Decoder().decode(data)
    except MalformedSnmpMessage:
        pass


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_a_corrupted_answer_is_our_error_or_a_message_never_a_crash(
    position: int, flip: int
) -> None:
    data = bytearray(answer())
    data[position % len(data)] ^= flip
    try:
        Decoder().decode(bytes(data))
    except MalformedSnmpMessage:
        pass
