"""`gronkoll collect`: SNMP polling and MQTT ingestion, in one process.

Configuration problems (an unknown profile, missing credentials, a short v3 key, a bad MQTT
mapping or TLS file) stop the command before anything is polled; an unusable store stops it
when it is opened. A broker that refuses our credentials at start stops it too, with one
error naming host:port and the user. Once running, nothing a device or the broker does stops
it: an unreachable broker is retried with backoff while SNMP polling goes on. SIGTERM or
SIGINT stops it, after the readings read so far are stored and the MQTT messages that
arrived are committed and acknowledged.

Threads: the asyncio loop polls SNMP; paho's network thread receives MQTT; one thread
commits MQTT batches and another writes SNMP batches, so the store and the energy engine
have one writer at a time. With MQTT and a SQLite store, both hand their batches to a commit
worker process (collector/mqtt_worker.py), the store's one writer, which answers one at a
time; with ``--once`` or an InfluxDB store, both write in this process under one lock.

``--once`` polls every SNMP device once and, when there is an mqtt section, takes what the
broker holds for our session: it connects (at most DRAIN_CONNECT_S), then commits and
acknowledges messages until none came for DRAIN_QUIET_S (at most DRAIN_MAX_S), and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

from gronkoll.collector.batches import Reading
from gronkoll.collector.device_points import device_lines
from gronkoll.collector.messages import MessagePipeline
from gronkoll.collector.mqtt import ClientFactory, new_client, tls_files
from gronkoll.collector.mqtt_ingest import MqttIngest
from gronkoll.collector.mqtt_worker import WorkerCommitter
from gronkoll.collector.poller import CONFIGURED, PollDevice, Poller, PollResult
from gronkoll.collector.snmp import SnmpClient
from gronkoll.errors import StoreError
from gronkoll.profiles import ProfileSet, check_device_profiles, load_profiles
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings
from gronkoll.statedb import StatusUpdate
from gronkoll.stores.influxdb import InfluxStore

log = logging.getLogger(__name__)

#: --once: how long to wait for the broker, for a quiet moment, and at most in all (seconds).
DRAIN_CONNECT_S = 10.0
DRAIN_QUIET_S = 1.0
DRAIN_MAX_S = 60.0
#: Integration state is saved at most this often (and at exit); after a crash the engine
#: resumes from the store's newest readings (gronkoll/ingest.py).
STATE_SAVE_S = 5.0


class StoreSink:
    """Writes status rows to the state database and readings through the Ingestor."""

    def __init__(
        self,
        runtime: Runtime,
        profiles: ProfileSet | None = None,
        lock: threading.Lock | None = None,
        worker: WorkerCommitter | None = None,
    ) -> None:
        self.runtime = runtime
        self.profiles = profiles
        self.lock = lock or threading.Lock()  # shared with the MQTT committer
        self.worker = worker  # the MQTT commit worker: then the store's one writer
        self.stored = 0

    def write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
        """Status first: if it fails, nothing is written and the poller sends both again."""
        with self.lock:
            self._write(readings, statuses)

    def _write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
        self.runtime.state.save_device_statuses(statuses)
        store = self.runtime.store
        if statuses and isinstance(store, InfluxStore):  # for Grafana: docs/grafana.md
            store.write_lines(device_lines(statuses, self.runtime.settings.device))
        moduli = []
        for status in statuses:
            # The profile says how wide the energy counter is, so a wrap is not a reset.
            profile = (
                self.profiles.get(status.profile) if self.profiles and status.profile else None
            )
            if profile is not None:
                moduli.append((status.device_id, profile.counter_modulus_wh()))
        if self.worker is not None:
            if readings or moduli:
                self.stored += self.worker.ingest(readings, moduli)
            return
        for device, modulus in moduli:
            self.runtime.ingestor.set_counter_modulus(device, modulus)
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


@contextmanager
def _signals_stop(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set stop while inside."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def mqtt_pipeline(settings: Settings, out: Callable[[str], None]) -> MessagePipeline | None:
    """The message pipeline when there is something to subscribe to (its config checked)."""
    if settings.mqtt is None:
        return None
    pipeline = MessagePipeline(settings)  # a bad mapping is a ConfigError, before anything opens
    tls_files(settings)  # and so is a TLS file that is not there
    if not pipeline.topic_filters():
        out(
            f"{settings.source}: mqtt: no subscriptions and no device has an mqtt block; "
            "not connecting to the broker."
        )
        return None
    return pipeline


def mqtt_line(ingest: MqttIngest, seconds: float) -> str:
    """What `gronkoll collect --once` took from the broker."""
    c = ingest.counts
    unrouted = ingest.pipeline.counts.unrouted
    return (
        f"MQTT {ingest.connection.address}: {c.messages} message{'s' if c.messages != 1 else ''} "
        f"in {seconds:.1f} s, {c.readings} readings stored, {c.quarantined} quarantine entries"
        + (f", {c.resends} resends recognised" if c.resends else "")
        + (f", {unrouted} on topics nothing maps" if unrouted else "")
    )


def collect(
    settings: Settings,
    *,
    once: bool,
    out: Callable[[str], None],
    client_factory: ClientFactory = new_client,
) -> int:
    """Run the collector (until SIGTERM/SIGINT, or one round with once); the exit code."""
    profiles = checked_profiles(settings)
    devices = snmp_devices(settings)
    pipeline = mqtt_pipeline(settings, out)
    if not devices and pipeline is None:
        out(
            f"{settings.source}: no device has an snmp block and nothing to take from MQTT; "
            "nothing to collect."
        )
        return 0
    with Runtime(settings, state_save_s=STATE_SAVE_S) as runtime, ExitStack() as stack:
        lock = threading.Lock()
        worker = None
        if pipeline is not None and not once and settings.store.kind == "sqlite":
            runtime.store  # noqa: B018 (open the store now: an unusable one stops us here)
            runtime.state  # noqa: B018 (migrated here, so the worker need not load Alembic)
            # The store's one writer from now on, for MQTT and SNMP, with the energy engine
            # (docs/mqtt.md); --once is short, and an InfluxDB store's spool has one writer.
            worker = WorkerCommitter(settings, STATE_SAVE_S)
            stack.callback(worker.close)
        else:
            runtime.ingestor  # noqa: B018 (open the store now: an unusable one stops us here)
        sink = StoreSink(runtime, profiles, lock, worker)
        known = runtime.state.device_status()
        ingest: MqttIngest | None = None
        mqtt_error: str | None = None
        mqtt_s = 0.0

        async def main() -> list[PollResult]:
            nonlocal ingest, mqtt_error, mqtt_s
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            client = SnmpClient()  # built in the loop it will use
            poller = Poller(
                devices,
                client,
                sink,
                profiles=profiles,
                settings=settings.collector,
                known=known,
                on_poll=None if once or not devices else FirstRound(len(devices)),
            )
            if pipeline is not None:
                ingest = MqttIngest(
                    settings,
                    runtime,
                    pipeline,
                    writer_lock=lock,
                    client_factory=client_factory,
                    on_fatal=lambda _err: loop.call_soon_threadsafe(stop.set),
                    committer=worker,
                )
            results: list[PollResult] = []
            started = time.monotonic()
            # A service takes SIGTERM from before its first message on: a stop asked for while
            # it starts up is a clean stop too.
            signals = contextlib.nullcontext() if once else _signals_stop(stop)
            try:
                with signals:
                    if ingest is not None:
                        ingest.start()
                    if once:
                        if devices:
                            results = await poller.poll_once()
                        if ingest is not None:
                            mqtt_error = await asyncio.to_thread(
                                ingest.drain,
                                connect_s=DRAIN_CONNECT_S,
                                quiet_s=DRAIN_QUIET_S,
                                max_s=DRAIN_MAX_S,
                            )
                            mqtt_s = time.monotonic() - started
                    else:
                        _log_start(settings, devices, ingest)
                        if devices:
                            await poller.run(stop)
                        else:
                            await stop.wait()
            finally:
                if ingest is not None:
                    await asyncio.to_thread(ingest.stop)
                client.close()
            if poller.store_error is not None:
                raise StoreError(
                    f"{poller.unstored} readings could not be stored: {poller.store_error}"
                )
            return results

        results = asyncio.run(main())
    if ingest is not None and ingest.fatal is not None:
        raise ingest.fatal
    if once:
        code = 0
        if devices:
            width = max(len(d.id) for d in devices)
            for result in sorted(results, key=lambda r: r.device_id):
                out(result_line(result, width))
            failed = sum(not r.ok for r in results)
            out(
                f"{len(results)} devices polled: {len(results) - failed} ok, {failed} failed; "
                f"{sink.stored} readings stored in {settings.store_path}"
            )
        if ingest is not None:
            if mqtt_error is not None:
                out(f"MQTT error: {mqtt_error}")
                code = 1
            else:
                out(mqtt_line(ingest, mqtt_s))
        return code
    mqtt_part = ""
    if ingest is not None:
        c = ingest.counts
        mqtt_part = (
            f"; MQTT: {c.messages} messages ({c.resends} of them resends recognised), "
            f"{c.readings} readings stored"
        )
    log.info("stopped; %d SNMP readings stored%s", sink.stored, mqtt_part)
    return 0


def _log_start(settings: Settings, devices: list[PollDevice], ingest: MqttIngest | None) -> None:
    if devices:
        log.info(
            "collecting from %d SNMP devices (every %g s unless set per device, "
            "%d at a time); stop with SIGTERM or Ctrl+C",
            len(devices),
            settings.collector.interval_s,
            settings.collector.concurrency,
        )
    if ingest is not None:
        log.info(
            "taking MQTT messages from %s (%s); stop with SIGTERM or Ctrl+C",
            ingest.connection.address,
            ", ".join(ingest.connection.filters),
        )
