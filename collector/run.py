"""`gronkoll collect`: profiles, devices, SNMP client and ingestion wired to the poller.

Configuration problems (an unknown profile, missing credentials, a short v3 key) stop the
command before anything is polled; an unusable store stops it when it is opened. Once running,
nothing a device does stops it: SIGTERM or SIGINT does, after the readings read so far are
stored.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from gronkoll.collector.batches import Reading
from gronkoll.collector.poller import CONFIGURED, PollDevice, Poller, PollResult
from gronkoll.collector.snmp import SnmpClient
from gronkoll.errors import StoreError
from gronkoll.profiles import ProfileSet, check_device_profiles, load_profiles
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings
from gronkoll.statedb import StatusUpdate

log = logging.getLogger(__name__)


class StoreSink:
    """Writes status rows to the state database and readings through the Ingestor."""

    def __init__(self, runtime: Runtime, profiles: ProfileSet | None = None) -> None:
        self.runtime = runtime
        self.profiles = profiles
        self.stored = 0

    def write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
        """Status first: if it fails, nothing is written and the poller sends both again."""
        self.runtime.state.save_device_statuses(statuses)
        for status in statuses:
            # The profile says how wide the energy counter is, so a wrap is not a reset.
            profile = (
                self.profiles.get(status.profile) if self.profiles and status.profile else None
            )
            if profile is not None:
                self.runtime.ingestor.set_counter_modulus(
                    status.device_id, profile.counter_modulus_wh()
                )
        if readings:
            self.stored += self.runtime.ingestor.ingest(readings).stored


class FirstRound:
    """Logs once when every device has been polled: how many answered."""

    def __init__(self, devices: int) -> None:
        self.devices = devices
        self.seen: dict[str, bool] = {}

    def __call__(self, result: PollResult) -> None:
        if len(self.seen) == self.devices or result.device_id in self.seen:
            return
        self.seen[result.device_id] = result.ok
        if len(self.seen) == self.devices:
            ok = sum(self.seen.values())
            log.info(
                "first round done: %d devices, %d answered, %d failing",
                self.devices,
                ok,
                self.devices - ok,
            )


def snmp_devices(settings: Settings) -> list[PollDevice]:
    """Every configured device with an snmp block, as the poller sees it."""
    return [
        PollDevice.from_settings(d, settings.collector)
        for d in settings.devices
        if d.snmp is not None
    ]


def checked_profiles(settings: Settings) -> ProfileSet:
    """The profiles, after refusing devices that name one nobody has."""
    profiles = load_profiles(settings)
    check_device_profiles(settings, profiles)
    return profiles


def result_line(result: PollResult, width: int) -> str:
    """One device's outcome for `gronkoll collect --once`, with its notes below it."""
    if not result.ok:
        return f"{result.device_id:<{width}}  error  {result.error}"
    n = len(result.readings)
    line = (
        f"{result.device_id:<{width}}  ok     {n} reading{'s' if n != 1 else ''}, "
        f"profile {result.profile or '(none)'}, {result.duration_s:.2f} s"
    )
    notes = list(result.problems)
    if result.profile_reason not in (None, CONFIGURED):
        notes.insert(0, f"profile: {result.profile_reason}")
    return "\n".join([line, *(f"{'':<{width}}  note   {n}" for n in notes)])


async def _run(poller: Poller, client: SnmpClient, once: bool) -> list[PollResult]:
    try:
        if once:
            return await poller.poll_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await poller.run(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return []
    finally:
        client.close()


def collect(settings: Settings, *, once: bool, out: Callable[[str], None]) -> int:
    """Run the collector (until SIGTERM/SIGINT, or one round with once); the exit code."""
    profiles = checked_profiles(settings)
    devices = snmp_devices(settings)
    if not devices:
        out(f"{settings.source}: no device has an snmp block; nothing to poll.")
        return 0
    with Runtime(settings) as runtime:
        sink = StoreSink(runtime, profiles)
        runtime.ingestor  # noqa: B018 (open the store now: an unusable one stops us here)
        known = runtime.state.device_status()

        async def main() -> list[PollResult]:
            client = SnmpClient()  # built in the loop it will use
            poller = Poller(
                devices,
                client,
                sink,
                profiles=profiles,
                settings=settings.collector,
                known=known,
                on_poll=None if once else FirstRound(len(devices)),
            )
            if not once:
                log.info(
                    "collecting from %d SNMP devices (every %g s unless set per device, "
                    "%d at a time); stop with SIGTERM or Ctrl+C",
                    len(devices),
                    settings.collector.interval_s,
                    settings.collector.concurrency,
                )
            results = await _run(poller, client, once)
            if poller.store_error is not None:
                raise StoreError(
                    f"{poller.unstored} readings could not be stored: {poller.store_error}"
                )
            return results

        results = asyncio.run(main())
    if once:
        width = max(len(d.id) for d in devices)
        for result in sorted(results, key=lambda r: r.device_id):
            out(result_line(result, width))
        failed = sum(not r.ok for r in results)
        out(
            f"{len(results)} devices polled: {len(results) - failed} ok, {failed} failed; "
            f"{sink.stored} readings stored in {settings.store_path}"
        )
    else:
        log.info("stopped; %d readings stored", sink.stored)
    return 0
