"""SNMP v1/v2c over asyncio UDP: one socket per address family for every agent, each request
matched to its answer by request-id and the address it was sent to.

A request is sent, and sent again after each timeout while retries are left (with the same
request-id, so a late answer to an earlier try still counts); after the last try it fails
with TimeoutError. An agent ignores a wrong community, so that too is a timeout. A datagram
that is not an answer to a pending request (another request-id, another address, another
community or PDU type) is ignored; one whose header cannot be read is logged once per
address and dropped; one whose header matches but whose body does not decode fails that
request with MalformedSnmpMessage.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

from gronkoll.collector.snmp_ber import RESPONSE, Decoder, Varbind, encode_message
from gronkoll.errors import MalformedSnmpMessage

log = logging.getLogger(__name__)

Answer = tuple[int, int, list[Varbind]]  # error-status, error-index, varbinds
_RECEIVE_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.rmem_max
_REQUEST_IDS = 2**31  # request-id is an Integer32 (RFC 3416); keep it positive


@dataclass(frozen=True, slots=True)
class Peer:
    """One agent as requests to it need it: where it is and what its messages start with."""

    family: int  # socket.AF_INET | socket.AF_INET6
    address: tuple[Any, ...]  # the resolved socket address
    version: int  # 0 for v1, 1 for v2c
    community: bytes
    head: bytes  # snmp_ber.message_head(version, community)
    timeout_s: float
    retries: int


@dataclass(slots=True)
class _Pending:
    peer: Peer
    data: bytes
    future: asyncio.Future[Answer]
    tries_left: int
    timer: asyncio.TimerHandle | None = field(default=None)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, channel: UdpChannel) -> None:
        self.channel = channel

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.channel.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SNMP socket error: %s", exc)  # the request it concerns times out


class UdpChannel:
    """Sends SNMP v1/v2c requests and hands each its answer; belongs to one event loop."""

    def __init__(self) -> None:
        self._sockets: dict[int, asyncio.DatagramTransport] = {}
        self._opening: dict[int, asyncio.Lock] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_id = secrets.randbelow(_REQUEST_IDS)
        self._decoder = Decoder()
        self._warned: set[tuple[Any, ...]] = set()

    def close(self) -> None:
        """Close the sockets; pending requests are cancelled."""
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            pending.future.cancel()
        self._pending.clear()
        for transport in self._sockets.values():
            transport.close()
        self._sockets.clear()
        self._opening.clear()

    async def request(
        self, peer: Peer, pdu: int, varbinds: bytes, first: int = 0, second: int = 0
    ) -> Answer:
        """Send one PDU (varbinds already encoded) and return the agent's answer."""
        transport = self._sockets.get(peer.family) or await self._open(peer.family)
        request_id = self._next_id
        while request_id in self._pending:
            request_id = (request_id + 1) % _REQUEST_IDS
        self._next_id = (request_id + 1) % _REQUEST_IDS
        data = encode_message(peer.head, pdu, request_id, varbinds, first, second)
        loop = asyncio.get_running_loop()
        pending = _Pending(peer, data, loop.create_future(), peer.retries)
        self._pending[request_id] = pending
        try:
            transport.sendto(data, peer.address)
            pending.timer = loop.call_at(loop.time() + peer.timeout_s, self._expire, request_id)
            return await pending.future
        finally:
            del self._pending[request_id]
            if pending.timer is not None:
                pending.timer.cancel()

    def received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """One datagram from the socket: the answer to a pending request, or dropped."""
        try:
            head, start, end = self._decoder.header(data)
        except MalformedSnmpMessage as err:
            self._warn(addr, err)
            return
        pending = self._pending.get(head.request_id)
        if pending is None or pending.future.done():
            return  # late (answered or given up on already), or not ours
        peer = pending.peer
        if (
            addr[:2] != peer.address[:2]
            or head.pdu != RESPONSE
            or head.community != peer.community
            or head.version != peer.version
        ):
            return
        try:
            answer = self._decoder.body(data, start, end)
        except MalformedSnmpMessage as err:
            pending.future.set_exception(err)
            return
        pending.future.set_result(answer)

    def _expire(self, request_id: int) -> None:
        pending = self._pending.get(request_id)
        if pending is None or pending.future.done():
            return
        if pending.tries_left <= 0:
            pending.future.set_exception(TimeoutError())
            return
        pending.tries_left -= 1
        peer = pending.peer
        transport = self._sockets.get(peer.family)
        if transport is None:  # closed meanwhile
            pending.future.set_exception(TimeoutError())
            return
        transport.sendto(pending.data, peer.address)
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_at(loop.time() + peer.timeout_s, self._expire, request_id)

    async def _open(self, family: int) -> asyncio.DatagramTransport:
        lock = self._opening.setdefault(family, asyncio.Lock())
        async with lock:  # concurrent first requests share one socket
            found = self._sockets.get(family)
            if found is not None:
                return found
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
                sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))  # noqa: S104
                sock.setblocking(False)
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Endpoint(self), sock=sock
                )
            except BaseException:
                sock.close()
                raise
            self._sockets[family] = transport
            return transport

    def _warn(self, addr: tuple[Any, ...], err: MalformedSnmpMessage) -> None:
        key = addr[:2]
        if key not in self._warned:
            self._warned.add(key)
            host, port = key
            log.warning(
                "dropped an SNMP datagram from %s that does not parse (%s); "
                "further ones from there are dropped without a word",
                f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                err,
            )
