"""How a request to one target reaches pysnmp, and what is built once per target.

SNMP v1 and v2c go through pysnmp's light v1arch stack (one SnmpDispatcher): a message is
the community and the PDU, matched to its answer by request-id, with nothing to register
per target; bench/snmp_poll.py measured it at about a fifth less CPU per request than the
full engine, and it needs no start-up pass however many communities there are. SNMP v3
needs the full engine's User-based Security Model (v3arch SnmpEngine), where every target
is a row in the engine's own configuration MIB: ``register`` adds it (LCD.configure), best
all before the first request, as pysnmp rebuilds its lookup maps on the first message after
a change. Varbinds are built once per OID and reused: for v3arch a resolved ObjectType,
which pysnmp does not resolve again; for v1arch a plain (OID, Null) pair, which it never
resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v1arch import asyncio as v1arch
from pysnmp.hlapi.v3arch import asyncio as v3arch
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto.rfc1902 import Null, ObjectName

from gronkoll.collector import snmp_errors
from gronkoll.collector.snmp_target import SnmpTarget

Operation = Literal["get", "next", "bulk"]
Oid = tuple[int, ...]

_V1ARCH = {"get": v1arch.get_cmd, "next": v1arch.next_cmd, "bulk": v1arch.bulk_cmd}
# Varbinds kept for reuse; walks of long tables ask for many OIDs once, so keep it bounded.
_MAX_VARBINDS = 20_000
_V3ARCH = {"get": v3arch.get_cmd, "next": v3arch.next_cmd, "bulk": v3arch.bulk_cmd}


@dataclass(frozen=True, slots=True)
class Session:
    """What pysnmp needs to send to one target: its stack, credentials and address."""

    target: SnmpTarget
    stack: Any  # SnmpDispatcher (v1, v2c) | SnmpEngine (v3)
    auth: Any  # the stack's CommunityData | UsmUserData
    transport: Any  # the stack's UdpTransportTarget | Udp6TransportTarget
    context: Any  # ContextData (v3) | None (v1, v2c: no contexts)

    @property
    def is_v3(self) -> bool:
        """Whether the request goes through the full engine (SNMP v3)."""
        return self.context is not None


class Sessions:
    """The stacks of one SnmpClient and a session per target, built on first use."""

    def __init__(self) -> None:
        self._dispatcher: Any = None  # v1arch SnmpDispatcher, made on first v1/v2c target
        # pysnmp keeps one USM user per name in an engine, so a v3 user name that comes with
        # two sets of keys (different devices, or a wrong key) gets a second engine.
        self._engines: list[tuple[v3arch.SnmpEngine, dict[str, tuple[str, ...]]]] = []
        self._sessions: dict[SnmpTarget, Session] = {}
        self._registered: set[SnmpTarget] = set()
        self._v1_varbinds: dict[Oid, tuple[ObjectName, Null]] = {}
        self._v3_varbinds: dict[Oid, v3arch.ObjectType] = {}

    def close(self) -> None:
        """Close every socket and forget every session."""
        if self._dispatcher is not None:
            self._dispatcher.close()  # and its transport dispatcher, which it made
            self._dispatcher = None
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
    ) -> tuple[Any, Any, Any, Any]:
        """One PDU: (error-indication, error-status, error-index, varbinds) from pysnmp."""
        if session.is_v3:
            varbinds: list[Any] = [self._v3_varbind(oid) for oid in oids]
            head: tuple[Any, ...] = (
                session.stack,
                session.auth,
                session.transport,
                session.context,
            )
            command = _V3ARCH[operation]
        else:
            varbinds = [self._v1_varbind(oid) for oid in oids]
            head = (session.stack, session.auth, session.transport)
            command = _V1ARCH[operation]
        if operation == "bulk":
            head += (0, repetitions)  # non-repeaters, max-repetitions
        indication, status, index, answer = await command(*head, *varbinds, lookupMib=False)
        return indication, status, index, answer

    async def _open(self, target: SnmpTarget) -> Session:
        if target.version == "3":
            transport_class: Any = (
                v3arch.Udp6TransportTarget if target.is_ipv6 else v3arch.UdpTransportTarget
            )
        else:
            transport_class = (
                v1arch.Udp6TransportTarget if target.is_ipv6 else v1arch.UdpTransportTarget
            )
        try:
            transport = await transport_class.create(
                (target.host, target.port), timeout=target.timeout_s, retries=target.retries
            )
        except (PySnmpError, UnicodeError) as err:  # UnicodeError: not a valid host name
            raise snmp_errors.unresolvable(target, err) from err
        if target.version == "3":
            session = Session(
                target=target,
                stack=self._engine_for(target),
                auth=target.auth_data(),
                transport=transport,
                context=v3arch.ContextData(contextName=target.context.encode()),
            )
        else:
            if self._dispatcher is None:
                self._dispatcher = v1arch.SnmpDispatcher()
            session = Session(
                target=target,
                stack=self._dispatcher,
                auth=v1arch.CommunityData(
                    target.community, mpModel=0 if target.version == "1" else 1
                ),
                transport=transport,
                context=None,
            )
        # Two first calls for one target may race here; both sessions work, one is kept.
        return self._sessions.setdefault(target, session)

    def _engine_for(self, target: SnmpTarget) -> v3arch.SnmpEngine:
        credentials = target.credentials()
        for engine, users in self._engines:
            known = users.setdefault(target.user, credentials)
            if known == credentials:
                return engine
        engine = v3arch.SnmpEngine()
        self._engines.append((engine, {target.user: credentials}))
        return engine

    def _v1_varbind(self, oid: Oid) -> tuple[ObjectName, Null]:
        found = self._v1_varbinds.get(oid)
        if found is None:
            if len(self._v1_varbinds) >= _MAX_VARBINDS:
                self._v1_varbinds.clear()
            found = self._v1_varbinds[oid] = (ObjectName(oid), Null(""))
        return found

    def _v3_varbind(self, oid: Oid) -> v3arch.ObjectType:
        found = self._v3_varbinds.get(oid)
        if found is None:
            if len(self._v3_varbinds) >= _MAX_VARBINDS:
                self._v3_varbinds.clear()
            varbind = v3arch.ObjectType(v3arch.ObjectIdentity(oid), Null(""))
            found = self._v3_varbinds[oid] = varbind
        return found
