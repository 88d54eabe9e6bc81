"""The poll loop: every SNMP device on its own schedule, isolated from the others.

Each device has its own task: it sleeps until the device is due, waits for one of
``concurrency`` slots, polls under a deadline of one interval, records the outcome and works
out the next due time (``interval × 2^failures`` while the device fails, at most
``backoff_max_s``). A dead, slow or misbehaving agent therefore only ever delays itself.
Readings and status rows go to the sink (the Ingestor and the state database) in batches
(batches.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gronkoll.collector.batches import FLUSH_S, Batches, Reading, Sink
from gronkoll.collector.clock import Clock, SystemClock
from gronkoll.collector.detect import detect
from gronkoll.collector.readout import read_device
from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.collector.status import DeviceState
from gronkoll.errors import DeviceError, DeviceUnreachable
from gronkoll.fields import STATE_CODES
from gronkoll.profiles import ProfileSet
from gronkoll.settings import CollectorSettings, Device
from gronkoll.statedb import DeviceStatus

log = logging.getLogger(__name__)

#: The profile reason of a device whose profile the config names.
CONFIGURED = "configured"


@dataclass(frozen=True, slots=True)
class PollDevice:
    """A device as the poller sees it: where it is, how often, and its configured profile."""

    id: str
    kind: str
    target: SnmpTarget
    interval_s: float
    profile: str | None = None  # configured profile id; None: detect from sysObjectID

    @classmethod
    def from_settings(cls, device: Device, collector: CollectorSettings) -> PollDevice:
        """The poller's view of a configured device with an snmp block."""
        if device.snmp is None:
            raise ValueError(f"{device.id} has no snmp block")
        return cls(
            id=device.id,
            kind=device.kind,
            target=SnmpTarget.from_settings(device.id, device.snmp, collector),
            interval_s=device.snmp.interval_s or collector.interval_s,
            profile=device.profile,
        )


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of one device gave."""

    device_id: str
    due: float  # monotonic time the poll was due
    started: float  # monotonic time it started (after waiting for a slot)
    at_ms: int  # the time stamped on its readings
    duration_s: float
    readings: tuple[Reading, ...]
    error: str | None
    problems: tuple[str, ...]
    profile: str | None
    profile_reason: str | None

    @property
    def ok(self) -> bool:
        """True when the device answered."""
        return self.error is None


def phase_s(device_id: str, spread_s: float) -> float:
    """A device's stable offset in [0, spread): the same on every start, on every machine."""
    digest = hashlib.blake2b(device_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * spread_s


def backoff_s(interval_s: float, failures: int, cap_s: float) -> float:
    """Seconds to the next poll: the interval, doubled per consecutive failure, capped."""
    if failures <= 0:
        return interval_s
    return max(interval_s, min(interval_s * 2.0 ** min(failures, 62), cap_s))


def _named(device_id: str, err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text if device_id in text else f"{device_id}: {text}"


class Poller:
    """Polls SNMP devices on their schedules and hands readings and status to a sink."""

    def __init__(
        self,
        devices: Sequence[PollDevice],
        client: SnmpClient,
        sink: Sink,
        *,
        profiles: ProfileSet,
        settings: CollectorSettings | None = None,
        clock: Clock | None = None,
        known: Mapping[str, DeviceStatus] | None = None,
        on_poll: Callable[[PollResult], None] | None = None,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.devices = list(devices)
        self.client = client
        self.sink = sink
        self.profiles = profiles
        self.settings = settings or CollectorSettings()
        self.clock: Clock = clock or SystemClock()
        self.on_poll = on_poll
        known = known or {}
        self.states = {d.id: DeviceState.restored(d.id, known.get(d.id)) for d in self.devices}
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.batches = Batches(
            sink, batch_size=self.settings.batch_size, flush_s=flush_s, clock=self.clock
        )

    @property
    def store_error(self) -> str | None:
        """Why the store refused the last write, while it still does; else None."""
        return self.batches.store_error

    @property
    def unstored(self) -> int:
        """Readings waiting in memory for the store."""
        return self.batches.unstored

    # -- scheduling -------------------------------------------------------------------------
    def next_wait_s(self, device: PollDevice) -> float:
        """Seconds from this poll's due time to the next: the interval, or the backoff."""
        failures = self.states[device.id].consecutive_failures
        return backoff_s(device.interval_s, failures, self.settings.backoff_max_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every device on its schedule until stop is set, then flush what was read."""
        await self.client.open_all(d.target for d in self.devices)
        start = self.clock.monotonic()
        tasks = [
            asyncio.create_task(
                self._device_loop(
                    d, start + phase_s(d.id, min(self.settings.jitter_s, d.interval_s))
                ),
                name=f"poll {d.id}",
            )
            for d in self.devices
        ]
        flusher = asyncio.create_task(self.batches.run(stop), name="flush")
        try:
            await stop.wait()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await flusher
            await self.batches.flush()
            self.batches.close()

    async def poll_once(self) -> list[PollResult]:
        """Poll every device once, now (no jitter), store what was read and return the results.

        Full batches are stored while the round goes on, as in ``run``: the writer thread then
        works beside the polls, and only the last batch is left for the end of the round."""
        await self.client.open_all(d.target for d in self.devices)
        now = self.clock.monotonic()
        stop = asyncio.Event()
        flusher = asyncio.create_task(self.batches.run(stop), name="flush")
        try:
            try:
                results = await asyncio.gather(*(self._poll(d, now) for d in self.devices))
            finally:
                stop.set()
                await flusher
            await self.batches.flush()
        finally:
            self.batches.close()
        return list(results)

    async def _device_loop(self, device: PollDevice, due: float) -> None:
        while True:
            await self.clock.sleep_until(due)
            await self._poll(device, due)
            step = self.next_wait_s(device)
            due += step
            now = self.clock.monotonic()
            if due <= now:  # the poll outlasted its slot: skip the missed ones, no burst
                due += (math.floor((now - due) / step) + 1) * step

    # -- one poll ---------------------------------------------------------------------------
    async def _poll(self, device: PollDevice, due: float) -> PollResult:
        state = self.states[device.id]
        async with self._slots:
            started = self.clock.monotonic()
            at = self.clock.time()
            at_ms = round(at * 1000)
            readings: list[Reading] = []
            problems: list[str] = []
            error: str | None = None
            reachable: float | None = 1.0
            try:
                async with asyncio.timeout(device.interval_s):
                    values, problems = await self._read(device, state)
            except DeviceUnreachable as err:
                error, reachable = _named(device.id, err), 0.0
            except DeviceError as err:  # it answered, but with an error (credentials, ...)
                error = _named(device.id, err)
            except TimeoutError:
                error = f"{device.id}: no complete answer within {device.interval_s:g} s"
                reachable = 0.0
            except Exception as err:  # the outermost loop of one device: never stop the round
                log.exception("%s: poll failed", device.id)
                error, reachable = _named(device.id, err), None
            else:
                readings = [(device.id, f, at_ms, v) for f, v in values]
                problems += state.counter_problems(values)
                if device.kind in ("pc", "server"):
                    readings += self._host_state(device, at_ms, values)
            duration = self.clock.monotonic() - started
        if reachable is not None:
            readings.append((device.id, "reachable", at_ms, reachable))
        if error is None:
            state.succeeded(at, duration, problems)
        else:
            state.failed(at, duration, error)
        result = PollResult(
            device_id=device.id,
            due=due,
            started=started,
            at_ms=at_ms,
            duration_s=duration,
            readings=tuple(readings),
            error=error,
            problems=tuple(problems),
            profile=state.profile,
            profile_reason=state.profile_reason,
        )
        self.batches.add(readings, state.update())
        if self.on_poll is not None:
            self.on_poll(result)
        return result

    async def _read(
        self, device: PollDevice, state: DeviceState
    ) -> tuple[list[tuple[str, float]], list[str]]:
        """Choose the profile if needed, then read the device: (field, value) pairs, problems."""
        if device.profile is not None:
            state.profile, state.profile_reason = device.profile, CONFIGURED
        elif not state.detected:
            found = await detect(self.client, device.target, self.profiles)
            state.profile, state.profile_reason = found.profile, found.reason
            state.detected = True
        profile = self.profiles.get(state.profile) if state.profile else None
        if profile is None:
            return [], [f"nothing to read: {state.profile_reason}"]
        readout = await read_device(self.client, device.target, profile, rows=state.rows)
        problems = [f"missing {m}" for m in readout.missing] + list(readout.problems)
        return list(readout.values), problems

    @staticmethod
    def _host_state(
        device: PollDevice, at_ms: int, values: list[tuple[str, float]]
    ) -> list[Reading]:
        """A computer whose own operating system answers is running, so its power profile
        applies: a PC is on when someone is logged in, else idle; a server is on, as it
        serves whether anyone is logged in or not.

        The sign is ``user_present`` (HOST-RESOURCES-MIB's hrSystemNumUsers), which only the
        host's own agent gives: a management controller (iDRAC, iLO) answers on standby
        power while the host is off. A computer that does not answer proves nothing (off,
        asleep, or just a firewall), so it gets no state at all.
        """
        present = dict(values).get("user_present")
        if present is None:
            return []
        state = "on" if present or device.kind == "server" else "idle"
        return [(device.id, "state", at_ms, float(STATE_CODES[state]))]
