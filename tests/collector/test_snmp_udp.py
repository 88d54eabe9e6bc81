"""collector.snmp_udp over real loopback UDP: answers are matched to requests by request-id,
address and community, tries are repeated on timeout, and a bad datagram costs one log line.

net-snmp's agent cannot be made to answer with another request-id, from another port or with
garbage, so these tests talk to a scripted responder on 127.0.0.1 that reads each request
and encodes its answers with pysnmp; the real agents are read through this path in
test_snmp.py, test_readout.py and test_poller.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902

from gronkoll.collector import snmp_ber
from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.collector.snmp_udp import Peer, UdpChannel
from gronkoll.errors import DeviceUnreachable, SnmpError

SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
Reply = Callable[[int, bytes], list[tuple[bytes, bool]]]  # (request-id, community) -> datagrams


def answer(request_id: int, value: str, community: bytes = b"public") -> bytes:
    """A GetResponse as pysnmp encodes it."""
    proto = api.v2c
    pdu = proto.GetResponsePDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, request_id)
    proto.apiPDU.set_varbinds(pdu, [(SYS_NAME, rfc1902.OctetString(value.encode()))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


class Responder(asyncio.DatagramProtocol):
    """Answers each request with the datagrams ``reply`` gives, each from its own socket or,
    when flagged, from a second socket (another port)."""

    def __init__(self, reply: Reply, other: socket.socket) -> None:
        self.reply = reply
        self.other = other
        self.requests = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.requests += 1
        message, _ = decoder.decode(data, asn1Spec=api.v2c.Message())
        pdu = api.v2c.apiMessage.get_pdu(message)
        request_id = int(api.v2c.apiPDU.get_request_id(pdu))
        community = bytes(api.v2c.apiMessage.get_community(message))
        for datagram, from_other in self.reply(request_id, community):
            if from_other:
                self.other.sendto(datagram, addr)
            else:
                self.transport.sendto(datagram, addr)


async def responder(reply: Reply, host: str = "127.0.0.1") -> tuple[Responder, int, socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    other = socket.socket(family, socket.SOCK_DGRAM)
    other.bind((host, 0))
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Responder(reply, other), local_addr=(host, 0)
    )
    return protocol, transport.get_extra_info("sockname")[1], other


def peer(port: int, *, timeout_s: float = 2.0, retries: int = 0) -> Peer:
    return Peer(
        family=socket.AF_INET,
        address=("127.0.0.1", port),
        version=1,
        community=b"public",
        head=snmp_ber.message_head(1, b"public"),
        timeout_s=timeout_s,
        retries=retries,
    )


async def get_sys_name(channel: UdpChannel, to: Peer) -> Any:
    varbinds = snmp_ber.request_varbinds([SYS_NAME])
    return await channel.request(to, snmp_ber.GET, varbinds)


def test_only_the_answer_with_our_request_id_address_and_community_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def reply(request_id: int, community: bytes) -> list[tuple[bytes, bool]]:
        return [
            (answer(request_id + 1, "another request"), False),
            (answer(request_id, "another port"), True),
            (b"\x00\x01garbage", False),
            (answer(request_id, "another community", b"private"), False),
            (answer(request_id, "the agent"), False),
        ]

    async def main() -> list[Any]:
        agent, port, other = await responder(reply)
        channel = UdpChannel()
        try:
            return [await get_sys_name(channel, peer(port)) for _ in range(2)]
        finally:
            channel.close()
            agent.transport.close()
            other.close()

    with caplog.at_level(logging.WARNING):
        answers = asyncio.run(main())
    assert answers == [(0, 0, [(SYS_NAME, "the agent")])] * 2
    dropped = [r for r in caplog.records if "does not parse" in r.getMessage()]
    assert len(dropped) == 1  # once per address, not per datagram
    assert "127.0.0.1:" in dropped[0].getMessage()


def test_a_request_is_sent_again_after_a_timeout_and_fails_after_the_last_try() -> None:
    def reply(request_id: int, community: bytes) -> list[tuple[bytes, bool]]:
        tries[request_id] = tries.get(request_id, 0) + 1
        if tries[request_id] < 3:
            return []  # lost
        return [(answer(request_id, "third try"), False)]

    tries: dict[int, int] = {}

    async def main() -> tuple[Any, float, int]:
        agent, port, other = await responder(reply)
        channel = UdpChannel()
        loop = asyncio.get_running_loop()
        try:
            answered = await get_sys_name(channel, peer(port, timeout_s=0.1, retries=2))
            started = loop.time()
            with pytest.raises(TimeoutError):
                await get_sys_name(channel, peer(port, timeout_s=0.1, retries=1))
            return answered, loop.time() - started, agent.requests
        finally:
            channel.close()
            agent.transport.close()
            other.close()

    answered, waited_s, requests = asyncio.run(main())
    assert answered == (0, 0, [(SYS_NAME, "third try")])
    assert 0.2 <= waited_s < 1.0  # two tries of 0.1 s
    assert requests == 3 + 2
    assert sorted(tries.values()) == [2, 3]  # each request kept its request-id over its tries


def test_an_answer_that_does_not_decode_fails_the_request_naming_device_and_oid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def reply(request_id: int, community: bytes) -> list[tuple[bytes, bool]]:
        good = answer(request_id, "x")
        return [(good[:-3] + b"\x45\x01\x00", False)]  # the value's type replaced by 0x45

    async def main() -> tuple[list[Exception], int]:
        agent, port, other = await responder(reply)
        target = SnmpTarget(device_id="pdu-7", host="127.0.0.1", port=port, community="public")
        errors: list[Exception] = []
        try:
            async with SnmpClient() as client:
                for _ in range(3):
                    with pytest.raises(SnmpError) as caught:
                        await client.get(target, ["1.3.6.1.2.1.1.5.0"])
                    errors.append(caught.value)
        finally:
            agent.transport.close()
            other.close()
        return errors, port

    with caplog.at_level(logging.WARNING):
        errors, port = asyncio.run(main())
    assert str(errors[0]) == (
        f"pdu-7 (127.0.0.1:{port}): the answer to "
        "SNMP v2c GET of 1.3.6.1.2.1.1.5.0 is not a valid SNMP message: "
        "unknown value type 0x45"
    )
    assert not isinstance(errors[0], DeviceUnreachable)
    logged = [r for r in caplog.records if "is not a valid SNMP message" in r.getMessage()]
    assert len(logged) == 1  # once per device


def test_an_ipv6_agent_is_read_through_its_own_socket() -> None:
    def reply(request_id: int, community: bytes) -> list[tuple[bytes, bool]]:
        return [
            (answer(request_id, "another port"), True),
            (answer(request_id, "pdu over IPv6"), False),
        ]

    async def main() -> tuple[Any, Any]:
        agent, port, other = await responder(reply, "::1")
        v6 = SnmpTarget(device_id="pdu-6", host="::1", port=port, community="public")
        # nothing listens on that port over IPv4: no answer
        v4 = SnmpTarget(
            device_id="pdu-4",
            host="127.0.0.1",
            port=port,
            community="public",
            timeout_s=0.2,
            retries=0,
        )
        try:
            async with SnmpClient() as client:
                got = await client.get(v6, ["1.3.6.1.2.1.1.5.0"])
                with pytest.raises(DeviceUnreachable, match=r"pdu-4 \(127.0.0.1:"):
                    await client.get(v4, ["1.3.6.1.2.1.1.5.0"])
                return got, str(v6)
        finally:
            agent.transport.close()
            other.close()

    got, shown = asyncio.run(main())
    assert got == {"1.3.6.1.2.1.1.5.0": "pdu over IPv6"}
    assert shown.startswith("pdu-6 ([::1]:")


def test_an_oid_ber_cannot_encode_is_an_error_naming_device_and_oid() -> None:
    async def main() -> str:
        to = SnmpTarget(device_id="pdu-3", host="127.0.0.1", port=9, community="public")
        async with SnmpClient() as client:
            with pytest.raises(SnmpError) as caught:
                await client.get(to, ["1.40.1"])  # X.690: under 0 and 1 the second arc is < 40
            return str(caught.value)

    assert asyncio.run(main()) == (
        "pdu-3 (127.0.0.1:9): cannot send SNMP v2c GET of 1.40.1: "
        "1.40.1 is not an OID BER can encode (X.690 8.19.4)"
    )
