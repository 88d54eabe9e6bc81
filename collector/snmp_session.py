"""How a request to one target is sent, and what is built once per target.

SNMP v1 and v2c go through Gronkoll's own BER codec (snmp_ber.py) and one asyncio UDP socket
per address family (snmp_udp.py): a message is the community and the PDU, matched to its
answer by request-id, with nothing to register per target, and the encoded varbinds of a
request are built once and reused. pysnmp's pyasn1 coding cost about 2 ms of CPU per GET
(bench/snmp_poll.py), several times all the rest of a poll. SNMP v3 needs the full engine's
User-based Security Model (pysnmp's v3arch SnmpEngine), where every target is a row in the
engine's own configuration MIB: ``register`` adds it (LCD.configure), best all before the
first request, as pysnmp rebuilds its lookup maps on the first message after a change. Its
varbinds are resolved ObjectTypes, built once per OID, which pysnmp does not resolve again.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as v3arch
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto.rfc1902 import Null

from gronkoll.collector import snmp_ber, snmp_errors
from gronkoll.collector.snmp_target import SnmpTarget
from gronkoll.collector.snmp_udp import Answer, Peer, UdpChannel

Operation = Literal["get", "next", "bulk"]
Oid = tuple[int, ...]

_PDUS = {"get": snmp_ber.GET, "next": snmp_ber.GET_NEXT, "bulk": snmp_ber.GET_BULK}
# Varbinds kept for reuse; walks of long tables ask for many OIDs once, so keep it bounded.
_MAX_VARBINDS = 20_000
_V3ARCH = {"get": v3arch.get_cmd, "next": v3arch.next_cmd, "bulk": v3arch.bulk_cmd}


@dataclass(frozen=True, slots=True)
class Session:
    """What a request to one target needs: for v1/v2c its peer, for v3 pysnmp's objects."""

    target: SnmpTarget
    peer: Peer | None  # v1, v2c
    stack: Any = None  # v3: the SnmpEngine
    auth: Any = None  # v3: UsmUserData
    transport: Any = None  # v3: UdpTransportTarget | Udp6TransportTarget
    context: Any = None  # v3: ContextData

    @property
    def is_v3(self) -> bool:
        """Whether the request goes through pysnmp's engine (SNMP v3)."""
        return self.peer is None


class Sessions:
    """The socket and engines of one SnmpClient and a session per target, built on first use."""

    def __init__(self) -> None:
        self._channel: UdpChannel | None = None  # made on the first v1/v2c request
        # pysnmp keeps one USM user per name in an engine, so a v3 user name that comes with
        # two sets of keys (different devices, or a wrong key) gets a second engine.
        self._engines: list[tuple[v3arch.SnmpEngine, dict[str, tuple[str, ...]]]] = []
        self._sessions: dict[SnmpTarget, Session] = {}
        self._registered: set[SnmpTarget] = set()
        self._encoded: dict[tuple[Oid, ...], bytes] = {}
        self._v3_varbinds: dict[Oid, v3arch.ObjectType] = {}

    def close(self) -> None:
        """Close every socket and forget every session."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        for engine, _ in self._engines:
            engine.close_dispatcher()
        self._engines.clear()
        self._sessions.clear()
        self._registered.clear()

    def __contains__(self, target: SnmpTarget) -> bool:
        return target in self._sessions

    def engines(self) -> list[v3arch.SnmpEngine]:
        """The v3 engines made so far."""
        return [engine for engine, _ in self._engines]

    async def session(self, target: SnmpTarget) -> Session:
        """The target's session; resolves its host the first time."""
        return self._sessions.get(target) or await self._open(target)

    def forget(self, target: SnmpTarget) -> None:
        """Drop the target's session, so that its host name is resolved again."""
        self._sessions.pop(target, None)

    def register(self, session: Session) -> None:
        """Add a v3 target to its engine's configuration now rather than on its first request."""
        if session.is_v3 and session.target not in self._registered:
            LCD.configure(
                session.stack, session.auth, session.transport, session.context.contextName
            )
            self._registered.add(session.target)

    async def send(
        self, session: Session, operation: Operation, oids: Sequence[Oid], repetitions: int = 0
    ) -> Answer:
        """One v1/v2c PDU: (error-status, error-index, varbinds); TimeoutError when no answer
        came after every try, MalformedSnmpMessage when the answer does not decode."""
        if session.peer is None:
            raise ValueError(f"{session.target} speaks SNMP v3: use send_v3")
        key = tuple(oids)
        varbinds = self._encoded.get(key)
        if varbinds is None:
            if len(self._encoded) >= _MAX_VARBINDS:
                self._encoded.clear()
            varbinds = self._encoded[key] = snmp_ber.request_varbinds(key)
        channel = self._channel
        if channel is None:
            channel = self._channel = UdpChannel()
        return await channel.request(session.peer, _PDUS[operation], varbinds, 0, repetitions)

    async def send_v3(
        self, session: Session, operation: Operation, oids: Sequence[Oid], repetitions: int = 0
    ) -> tuple[Any, Any, Any, Any]:
        """One v3 PDU: (error-indication, error-status, error-index, varbinds) from pysnmp."""
        varbinds = [self._v3_varbind(oid) for oid in oids]
        head: tuple[Any, ...] = (session.stack, session.auth, session.transport, session.context)
        if operation == "bulk":
            head += (0, repetitions)  # non-repeaters, max-repetitions
        command = _V3ARCH[operation]
        indication, status, index, answer = await command(*head, *varbinds, lookupMib=False)
        return indication, status, index, answer

    async def _open(self, target: SnmpTarget) -> Session:
        if target.version == "3":
            session = await self._open_v3(target)
        else:
            family, address = await _resolve(target)
            version = snmp_ber.VERSIONS[target.version]
            community = target.community.encode()
            peer = Peer(
                family=family,
                address=address,
                version=version,
                community=community,
                head=snmp_ber.message_head(version, community),
                timeout_s=target.timeout_s,
                retries=target.retries,
            )
            session = Session(target=target, peer=peer)
        # Two first calls for one target may race here; both sessions work, one is kept.
        return self._sessions.setdefault(target, session)

    async def _open_v3(self, target: SnmpTarget) -> Session:
        transport_class: Any = (
            v3arch.Udp6TransportTarget if target.is_ipv6 else v3arch.UdpTransportTarget
        )
        try:
            transport = await transport_class.create(
                (target.host, target.port), timeout=target.timeout_s, retries=target.retries
            )
        except (PySnmpError, UnicodeError) as err:  # UnicodeError: not a valid host name
            raise snmp_errors.unresolvable(target, err) from err
        return Session(
            target=target,
            peer=None,
            stack=self._engine_for(target),
            auth=target.auth_data(),
            transport=transport,
            context=v3arch.ContextData(contextName=target.context.encode()),
        )

    def _engine_for(self, target: SnmpTarget) -> v3arch.SnmpEngine:
        credentials = target.credentials()
        for engine, users in self._engines:
            known = users.setdefault(target.user, credentials)
            if known == credentials:
                return engine
        engine = v3arch.SnmpEngine()
        self._engines.append((engine, {target.user: credentials}))
        return engine

    def _v3_varbind(self, oid: Oid) -> v3arch.ObjectType:
        found = self._v3_varbinds.get(oid)
        if found is None:
            if len(self._v3_varbinds) >= _MAX_VARBINDS:
                self._v3_varbinds.clear()
            varbind = v3arch.ObjectType(v3arch.ObjectIdentity(oid), Null(""))
            found = self._v3_varbinds[oid] = varbind
        return found


async def _resolve(target: SnmpTarget) -> tuple[int, tuple[Any, ...]]:
    """The target's address family and socket address. An IP address needs no lookup; a host
    name is looked up for IPv4, as pysnmp's UdpTransportTarget does for v3."""
    try:
        if target.is_ip:
            family = socket.AF_INET6 if target.is_ipv6 else socket.AF_INET
            found = socket.getaddrinfo(
                target.host, target.port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
            )
        else:
            found = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
    except (OSError, UnicodeError) as err:  # gaierror is an OSError; UnicodeError: bad name
        raise snmp_errors.unresolvable(target, err) from err
    if not found:
        raise snmp_errors.unresolvable(target, OSError("no address found"))
    family, _, _, _, address = found[0]
    return family, address
