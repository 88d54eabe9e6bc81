"""Speaks SNMP and nothing else: GET and walk devices, return typed values, raise our errors.

One SnmpClient serves the whole process. It keeps, per target, what a request can reuse (the
resolved address and the encoded message head for v1/v2c, pysnmp's transport and credentials
for v3), so a poll costs one PDU and little else. v1 and v2c are coded by Gronkoll itself
(snmp_ber.py, snmp_udp.py), v3 by pysnmp's engine (snmp_session.py says why).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Self

from pysnmp.error import PySnmpError
from pysnmp.proto import errind

from gronkoll.collector import snmp_errors
from gronkoll.collector.snmp_ber import Varbind
from gronkoll.collector.snmp_errors import NO_SUCH_NAME, TOO_BIG, Request
from gronkoll.collector.snmp_session import Operation, Session, Sessions
from gronkoll.collector.snmp_target import SnmpTarget
from gronkoll.collector.snmp_values import Value, oid_text, parse_oid, to_value
from gronkoll.errors import DeviceError, DeviceUnreachable, MalformedSnmpMessage, SnmpError

__all__ = ["FIRST_PAGE", "MAX_OIDS_PER_PDU", "WALKS_IN_FLIGHT", "SnmpClient", "SnmpTarget", "Value"]

MAX_OIDS_PER_PDU = 30
_SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# A user no agent should have: asking for it only shows whether a v3 agent answers at all.
_PROBE_USER = "gronkoll-liveness-probe"
# Registering a target costs pysnmp a few ms (its configuration is a MIB of its own).
_YIELD_EVERY = 50
#: GETBULK/GETNEXT requests of walks in flight at a time. A walk's answer is a page of
#: values (up to 25), several times a GET's; hundreds at once (64 devices x 5 columns) overflow
#: the UDP receive buffers of agents and of this process, and the lost ones time out.
WALKS_IN_FLIGHT = 16
#: A walk's first GETBULK page when the caller does not know the rows: tables of phases,
#: inlets, banks and supplies fit in one; an outlet table takes a few pages.
FIRST_PAGE = 8
_MAX_NAMES = 20_000  # OIDs kept in their text and tuple forms

log = logging.getLogger(__name__)


class SnmpClient:
    """GET and walk SNMP agents from one asyncio loop, through one socket (v1, v2c) and pysnmp
    engines (v3) it shares between all targets (snmp_session.py)."""

    def __init__(self, *, walks_in_flight: int = WALKS_IN_FLIGHT) -> None:
        if walks_in_flight < 1:
            raise ValueError(f"walks_in_flight must be at least 1, not {walks_in_flight}")
        self.walks_in_flight = walks_in_flight
        self._walk_slots = asyncio.Semaphore(walks_in_flight)
        self._sessions = Sessions()
        self._names: dict[str, str] = {}  # OID as asked -> OID as answered (no leading dot)
        self._oids: dict[str, tuple[int, ...]] = {}
        self._texts: dict[tuple[int, ...], str] = {}  # OID as answered -> its text
        self._warned: set[str] = set()  # devices whose malformed answers were logged
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the stacks' sockets; the client may be used again (on any loop) after."""
        self._sessions.close()
        self._loop = None
        self._walk_slots = asyncio.Semaphore(self.walks_in_flight)  # a new loop may use it

    async def open_all(self, targets: Iterable[SnmpTarget]) -> None:
        """Build every target's session in one pass, before the first request.

        SNMP v3 targets are registered with pysnmp's engine here: it rebuilds its lookup maps
        on the first message after a target was added, so registering them one by one as
        their first requests go out, while answers come in, costs n rebuilds of up to n rows
        (about 50 s for 1,000 targets); registered together, the maps are built once. A host
        that cannot be resolved is left for its first request to report.
        """
        self._bind_loop()
        for count, target in enumerate(t for t in targets if t not in self._sessions):
            try:
                session = await self._sessions.session(target)
            except DeviceError:
                continue
            self._sessions.register(session)
            if count % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a long start-up still lets signals and timers in

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, Value]:
        """The values of these OIDs, in one GET per 30; objects the device lacks are left out."""
        names = list(dict.fromkeys(self._names.get(oid) or self._name(oid) for oid in oids))
        self._bind_loop()
        session = await self._sessions.session(target)
        values: dict[str, Value] = {}
        for start in range(0, len(names), MAX_OIDS_PER_PDU):
            await self._get(target, session, names[start : start + MAX_OIDS_PER_PDU], values)
        return values

    async def get_one(self, target: SnmpTarget, oid: str) -> Value:
        """The value of one OID; NoSuchObject when the device does not have it."""
        name = oid_text(parse_oid(oid))
        values = await self.get(target, [name])
        if name not in values:
            raise snmp_errors.no_such_object(target, name)
        return values[name]

    async def walk(
        self,
        target: SnmpTarget,
        oid: str,
        *,
        max_repetitions: int = 25,
        first_repetitions: int = FIRST_PAGE,
        after: str | None = None,
    ) -> dict[str, Value]:
        """Every object under oid (GETBULK; GETNEXT for v1), keyed by its full numeric OID;
        with ``after`` (an OID under oid, read already) only the objects after it.

        The first GETBULK asks for first_repetitions objects (the caller's guess of the rows
        plus one, to see the end), each further one for twice as many, up to max_repetitions:
        a page runs on past the subtree into objects nobody asked for, each costing a coding.
        """
        root = parse_oid(oid)
        if max_repetitions < 1:
            raise ValueError(f"max_repetitions must be at least 1, not {max_repetitions}")
        repetitions = max(1, min(first_repetitions, max_repetitions))
        self._bind_loop()
        session = await self._sessions.session(target)
        operation = "GETNEXT walk" if target.version == "1" else "GETBULK walk"
        request = Request(target, operation, [oid_text(root)])
        values: dict[str, Value] = {}
        last = parse_oid(after) if after else root
        while True:
            async with self._walk_slots:
                if target.version == "1":
                    status, index, answer = await self._send(request, session, "next", [last])
                else:
                    status, index, answer = await self._send(
                        request, session, "bulk", [last], repetitions
                    )
            if target.version != "1" and status == TOO_BIG and repetitions > 1:
                max_repetitions = repetitions = repetitions // 2
                continue
            if status == NO_SUCH_NAME and target.version == "1":
                return values  # v1's way of saying end of MIB
            if status:
                raise snmp_errors.from_status(request, status, index)
            for current, converted in answer:
                if converted is None or current[: len(root)] != root or len(current) == len(root):
                    return values  # endOfMibView (named as asked), or past the subtree
                if current <= last:
                    raise SnmpError(
                        f"{target}: the agent answered {request} with OIDs out of order "
                        f"({oid_text(current)} after {oid_text(last)})"
                    )
                values[oid_text(current)] = converted
                last = current
            if not answer:
                return values
            repetitions = min(repetitions * 2, max_repetitions)

    async def bulk(
        self, target: SnmpTarget, oids: Sequence[str], repetitions: int
    ) -> list[Varbind]:
        """One GETBULK (v2c, v3) of the objects after each OID, as the agent answered: its
        varbinds by row, each row one object per OID asked. Counts as a walk in flight."""
        if target.version == "1":
            raise ValueError(f"{target}: SNMP v1 has no GETBULK")
        self._bind_loop()
        session = await self._sessions.session(target)
        roots = [parse_oid(oid) for oid in oids]
        request = Request(target, "GETBULK walk", [oid_text(root) for root in roots])
        async with self._walk_slots:
            status, index, answer = await self._send(request, session, "bulk", roots, repetitions)
        if status:
            raise snmp_errors.from_status(request, status, index)
        return answer

    async def _get(
        self, target: SnmpTarget, session: Session, names: list[str], into: dict[str, Value]
    ) -> None:
        request = Request(target, "GET", names)
        oids = [self._oids.get(name) or self._oid(name) for name in names]
        status, index, answer = await self._send(request, session, "get", oids)
        if status == TOO_BIG and len(names) > 1:
            half = len(names) // 2
            await self._get(target, session, names[:half], into)
            await self._get(target, session, names[half:], into)
            return
        if status == NO_SUCH_NAME and target.version == "1" and 1 <= index <= len(names):
            # v1 fails the whole PDU for one missing object: ask again without it.
            rest = names[: index - 1] + names[index:]
            if rest:
                await self._get(target, session, rest, into)
            return
        if status:
            raise snmp_errors.from_status(request, status, index)
        for name, value in answer:
            if value is not None:
                into[self._texts.get(name) or self._text(name)] = value

    async def _send(
        self,
        request: Request,
        session: Session,
        operation: Operation,
        oids: list[tuple[int, ...]],
        repetitions: int = 0,
    ) -> tuple[int, int, list[Varbind]]:
        """Send one PDU; return (error-status, error-index, varbinds) or raise our error."""
        if not session.is_v3:
            try:
                return await self._sessions.send(session, operation, oids, repetitions)
            except TimeoutError as err:
                raise await self._no_answer(request) from err
            except MalformedSnmpMessage as err:
                raise self._malformed(request, err) from err
            except ValueError as err:  # an OID that cannot be sent
                raise SnmpError(f"{request.target}: cannot send {request}: {err}") from err
        try:
            indication, status, index, answer = await self._sessions.send_v3(
                session, operation, oids, repetitions
            )
        except PySnmpError as err:
            raise snmp_errors.from_library(request, err) from err
        if indication:
            if isinstance(indication, errind.RequestTimedOut):
                raise await self._no_answer(request) from indication
            raise snmp_errors.from_indication(request, indication) from indication
        varbinds = [(tuple(name), to_value(value)) for name, value in answer]
        return int(status), int(index), varbinds

    def _malformed(self, request: Request, err: MalformedSnmpMessage) -> SnmpError:
        """The error for an answer that does not decode, logged once per device."""
        error = snmp_errors.malformed(request, err)
        if request.target.device_id not in self._warned:
            self._warned.add(request.target.device_id)
            log.warning("%s (further ones from this device are not logged)", error)
        return error

    async def _no_answer(self, request: Request) -> DeviceError:
        """The error for a timeout: a v3 agent that answers a probe dropped the request."""
        target = request.target
        if not target.is_ip:
            self._sessions.forget(target)  # resolve the name again next time
        if target.version == "3" and (target.priv_protocol is not None or target.context):
            probe = dataclasses.replace(
                target,
                user=_PROBE_USER,
                auth_protocol=None,
                auth_key="",
                priv_protocol=None,
                priv_key="",
                context="",
                retries=0,
            )
            try:
                await self.get(probe, [_SYS_UPTIME])
            except DeviceUnreachable:
                pass
            except DeviceError:
                return snmp_errors.v3_dropped(request)
            else:
                return snmp_errors.v3_dropped(request)
        return snmp_errors.timed_out(request)

    def _bind_loop(self) -> None:
        # Sockets and timers belong to the loop that was running when they were made.
        loop = asyncio.get_running_loop()
        if self._loop is not loop and self._loop is not None:
            raise RuntimeError("this SnmpClient runs on another event loop; close() it first")
        self._loop = loop

    def _name(self, oid: str) -> str:
        name = self._names[oid] = oid_text(parse_oid(oid))
        return name

    def _oid(self, name: str) -> tuple[int, ...]:
        if len(self._oids) >= _MAX_NAMES:
            self._oids.clear()
        oid = self._oids[name] = parse_oid(name)
        return oid

    def _text(self, oid: tuple[int, ...]) -> str:
        if len(self._texts) >= _MAX_NAMES:
            self._texts.clear()
        text = self._texts[oid] = oid_text(oid)
        return text
