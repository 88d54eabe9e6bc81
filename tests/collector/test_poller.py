"""The poll loop against real snmpd agents, on a clock the tests move by hand.

The schedule runs on a virtual clock (FakeClock): nothing happens until a test moves it, and
then every device due by then polls a real agent over real UDP. So poll times are exact, and
"a dead agent does not hold up the others" is measured in real seconds: the live devices'
answers arrive long before the dead one's SNMP timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import servers

from gronkoll.collector.batches import Reading
from gronkoll.collector.poller import PollDevice, Poller, PollResult, backoff_s, phase_s
from gronkoll.collector.snmp import SnmpClient, SnmpTarget, Value
from gronkoll.collector.status import DeviceState
from gronkoll.errors import StoreUnavailable
from gronkoll.fields import STATE_CODES
from gronkoll.profiles import ProfileSet, load_profiles
from gronkoll.settings import CollectorSettings, SnmpSettings
from gronkoll.statedb import StatusUpdate

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
DEADLINE_S = 20.0


# -- a clock the test moves ------------------------------------------------------------------
class FakeClock:
    """Virtual time: a sleeper wakes only when the test moves the clock past its deadline."""

    EPOCH = 1_790_000_000.0  # wall time at virtual 0

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.EPOCH + self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self.now:
            await asyncio.sleep(0)
            return
        entry = (deadline, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    def advance_to(self, t: float) -> None:
        self.now = t
        for deadline, future in self._sleepers:
            if deadline <= t and not future.done():
                future.set_result(None)

    def sleeping(self) -> int:
        return sum(not f.done() for _, f in self._sleepers)

    def next_deadline(self) -> float:
        return min(d for d, f in self._sleepers if not f.done())

    async def settle(self, sleepers: int) -> None:
        """Wait (real time, with a deadline) until that many tasks sleep on the clock."""
        await until(lambda: self.sleeping() >= sleepers, "the poller to settle")

    async def run_until(self, end: float, sleepers: int) -> None:
        """Move from deadline to deadline up to end, letting every poll finish in between."""
        while True:
            await self.settle(sleepers)
            step = self.next_deadline()
            if step > end:
                return
            self.advance_to(step)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> float:
    """Poll condition until it holds; the real seconds it took. Fails after timeout_s."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


# -- the sink, and devices on real agents ------------------------------------------------------
class MemorySink:
    """Keeps what the poller stores; can refuse the first writes, like a locked store."""

    def __init__(self, refuse: int = 0) -> None:
        self.readings: list[Reading] = []
        self.statuses: dict[str, StatusUpdate] = {}
        self.writes = 0
        self.refuse = refuse
        self.threads: set[str] = set()

    def write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.refuse:
            self.refuse -= 1
            raise StoreUnavailable("store.db: the store is locked by another process")
        self.writes += 1
        self.readings += readings
        self.statuses.update((s.device_id, s) for s in statuses)


def device(
    device_id: str,
    agent: servers.Snmpd,
    *,
    kind: str = "server",
    profile: str | None = "host-resources",
    interval_s: float = 10,
    timeout_s: float = 1.0,
    community: str | None = None,
) -> PollDevice:
    snmp = SnmpSettings(
        host=agent.host,
        port=agent.port,
        community=community or agent.community,
        timeout_s=timeout_s,
        retries=0,
    )
    return PollDevice(
        id=device_id,
        kind=kind,
        target=SnmpTarget.from_settings(device_id, snmp, CollectorSettings()),
        interval_s=interval_s,
        profile=profile,
    )


@pytest.fixture(scope="module")
def profiles() -> ProfileSet:
    return load_profiles()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[servers.Snmpd]:
    """An agent of this test's own, to stop and start without disturbing the shared one."""
    (tmp_path / "agent").mkdir()
    with servers.start_snmpd(tmp_path / "agent") as own:
        yield own


class Run:
    """A poller running in the background, with every result it reported."""

    def __init__(self, poller: Poller, clock: FakeClock) -> None:
        self.poller = poller
        self.clock = clock
        self.results: list[PollResult] = []
        self.stop = asyncio.Event()

    def of(self, device_id: str) -> list[PollResult]:
        return [r for r in self.results if r.device_id == device_id]

    def dues(self, device_id: str) -> list[float]:
        return [r.due for r in self.of(device_id)]


@asynccontextmanager
async def running(
    devices: list[PollDevice],
    sink: MemorySink,
    profiles: ProfileSet,
    **settings: float,
) -> AsyncIterator[Run]:
    clock = FakeClock()
    client = SnmpClient()
    collector = CollectorSettings(**{"jitter_s": 0, **settings})
    poller = Poller(devices, client, sink, profiles=profiles, settings=collector, clock=clock)
    run = Run(poller, clock)
    poller.on_poll = run.results.append
    task = asyncio.create_task(poller.run(run.stop))
    try:
        yield run
    finally:
        run.stop.set()
        await task
        client.close()


pytestmark = pytest.mark.integration


# -- schedule ----------------------------------------------------------------------------------
def test_jitter_is_stable_per_device_and_within_its_spread() -> None:
    offsets = {d: phase_s(d, 5.0) for d in (f"pc-{i:04d}" for i in range(500))}
    assert offsets == {d: phase_s(d, 5.0) for d in offsets}  # same on every start
    assert all(0 <= o < 5.0 for o in offsets.values())
    assert max(offsets.values()) - min(offsets.values()) > 4  # spread, not bunched


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    assert [backoff_s(60, f, 900) for f in range(6)] == [60, 120, 240, 480, 900, 900]
    assert backoff_s(60, 10_000, 900) == 900
    assert backoff_s(1200, 3, 900) == 1200  # never faster than the interval


def test_a_dead_agent_does_not_hold_up_the_others(
    snmpd: servers.Snmpd, agent: servers.Snmpd, profiles: ProfileSet
) -> None:
    live = [device(f"live-{i}", snmpd) for i in (1, 2)]
    dead = device("dead-1", agent, timeout_s=4.0)  # a dead poll takes 4 real seconds
    sink = MemorySink()

    async def scenario() -> Run:
        async with running([*live, dead], sink, profiles) as run:
            await run.clock.settle(4)  # everyone polled at 0 and sleeps again
            assert all(r.ok for r in run.results)
            with agent.down():
                for due in (10.0, 20.0):
                    run.clock.advance_to(due)
                    took = await until(
                        lambda: all(due in run.dues(d.id) for d in live),  # noqa: B023
                        f"the live polls at {due}",
                    )
                    assert took < 2.0, f"live devices waited {took:.1f} s for the dead one"
                    assert run.dues("dead-1") == [0.0]  # still waiting for its answer
                await until(lambda: len(run.of("dead-1")) == 2, "the dead poll to time out")
        return run

    run = asyncio.run(scenario())
    for d in live:
        assert run.dues(d.id) == [0.0, 10.0, 20.0]
        assert [r.started for r in run.of(d.id)] == [0.0, 10.0, 20.0]
        assert all(r.ok for r in run.of(d.id))
    failed = run.of("dead-1")[1]
    assert not failed.ok and failed.error is not None and failed.error.startswith("dead-1 ")
    assert ("dead-1", "reachable", failed.at_ms, 0.0) in sink.readings


def test_backoff_grows_while_dead_resets_on_recovery_and_logs_once(
    agent: servers.Snmpd, profiles: ProfileSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gronkoll.collector")
    sink = MemorySink()
    flaky = device("ups-1", agent, timeout_s=0.2)

    async def scenario() -> Run:
        async with running([flaky], sink, profiles, backoff_max_s=80) as run:
            await run.clock.settle(2)
            with agent.down():
                await run.clock.run_until(200, 2)
            await run.clock.run_until(260, 2)
        return run

    run = asyncio.run(scenario())
    # 10 s interval: failures at 10, 30, 70, 150 wait 20, 40, 80, 80 (capped); back at 230
    assert run.dues("ups-1") == [0, 10, 30, 70, 150, 230, 240, 250, 260]
    assert [r.ok for r in run.of("ups-1")] == [True, False, False, False, False] + [True] * 4
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("gronkoll.collector")]
    assert len([m for m in messages if m.startswith("ups-1 ") and "no answer" in m]) == 1
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(FakeClock.EPOCH + 10))
    assert [m for m in messages if "answering again" in m] == [
        f"ups-1: answering again after 4 failed polls (failing since {since} UTC)"
    ]
    status = sink.statuses["ups-1"]
    assert status.consecutive_failures == 0 and status.last_error is not None
    assert status.last_error.startswith("ups-1 (127.0.0.1:")


def test_readings_go_to_the_sink_in_batches_from_a_writer_thread(
    snmpd: servers.Snmpd, profiles: ProfileSet
) -> None:
    devices = [device(f"srv-{i}", snmpd) for i in range(3)]
    timed, full = MemorySink(), MemorySink()

    async def scenario() -> Run:
        async with running(devices, timed, profiles, batch_size=1000) as run:
            await run.clock.settle(4)
            assert timed.writes == 0  # the batch is not full: it waits for the flush interval
            run.clock.advance_to(5)
            await until(lambda: timed.writes == 1, "the timed flush")
        async with running(devices, full, profiles, batch_size=2) as run:
            await run.clock.settle(4)
            await until(lambda: full.writes >= 1, "a flush of a full batch")  # clock still at 0
        return run

    run = asyncio.run(scenario())
    assert {r[0] for r in timed.readings} == {d.id for d in devices}
    assert set(timed.statuses) == {d.id for d in devices}
    assert timed.threads == full.threads == {"gronkoll-writer_0"}
    assert len(full.readings) == sum(len(r.readings) for r in run.results)


def test_poll_once_stores_full_batches_while_the_round_goes_on(
    snmpd: servers.Snmpd, profiles: ProfileSet
) -> None:
    devices = [device(f"srv-{i}", snmpd) for i in range(10)]
    polled: list[str] = []

    class Watching(MemorySink):
        """Notes how many devices had been polled when each write began."""

        def __init__(self) -> None:
            super().__init__()
            self.polled_at_write: list[int] = []

        def write(self, readings: Sequence[Reading], statuses: Sequence[StatusUpdate]) -> None:
            self.polled_at_write.append(len(polled))
            super().write(readings, statuses)

    sink = Watching()
    poller = Poller(
        devices,
        SnmpClient(),
        sink,
        profiles=profiles,
        settings=CollectorSettings(concurrency=1, batch_size=2),
        on_poll=lambda result: polled.append(result.device_id),
    )

    async def scenario() -> list[PollResult]:
        try:
            return await poller.poll_once()
        finally:
            poller.client.close()

    results = asyncio.run(scenario())
    assert all(r.ok for r in results)
    assert sink.polled_at_write[0] < len(devices)  # written before the last device was read
    assert len(sink.readings) == sum(len(r.readings) for r in results)
    assert set(sink.statuses) == {d.id for d in devices}


def test_a_store_that_refuses_writes_keeps_the_readings_for_later(
    snmpd: servers.Snmpd, profiles: ProfileSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gronkoll.collector")
    sink = MemorySink(refuse=2)

    async def scenario() -> None:
        async with running([device("srv-1", snmpd)], sink, profiles) as run:
            await run.clock.run_until(20, 2)  # flushes at 5 and 10 fail, 15 and 20 succeed
            assert run.poller.store_error is None

    asyncio.run(scenario())
    assert [r[2] for r in sink.readings if r[1] == "reachable"] == [
        round((FakeClock.EPOCH + t) * 1000) for t in (0, 10, 20)
    ]
    refused = [r for r in caplog.records if "cannot store readings" in r.getMessage()]
    assert len(refused) == 1 and "locked" in refused[0].getMessage()
    assert any("the store takes writes again" in r.getMessage() for r in caplog.records)


# -- what a poll reads -------------------------------------------------------------------------
def poll_then_stop_agent(
    device_id: str, kind: str, agent: servers.Snmpd, profiles: ProfileSet
) -> list[PollResult]:
    """The device's polls: one while its agent answers, then one while the agent is down."""
    sink = MemorySink()
    dev = device(device_id, agent, kind=kind, timeout_s=0.2)

    async def scenario() -> Run:
        async with running([dev], sink, profiles) as run:
            await run.clock.settle(2)
            with agent.down():
                await run.clock.run_until(10, 2)
        return run

    return asyncio.run(scenario()).of(device_id)


def test_a_pc_gets_its_state_from_user_presence_and_none_when_unreachable(
    agent: servers.Snmpd, profiles: ProfileSet
) -> None:
    first, second = poll_then_stop_agent("pc-1", "pc", agent, profiles)
    values = {f: v for _, f, _, v in first.readings}
    present = values["user_present"]
    assert values["state"] == STATE_CODES["on" if present else "idle"]
    assert values["reachable"] == 1.0
    # unreachable: reachable 0 and no state at all (off, asleep or firewalled: unknown)
    assert [(f, v) for _, f, _, v in second.readings] == [("reachable", 0.0)]


def test_a_server_whose_os_answers_is_on_whoever_is_logged_in(
    agent: servers.Snmpd, profiles: ProfileSet
) -> None:
    first, second = poll_then_stop_agent("srv-1", "server", agent, profiles)
    values = {f: v for _, f, _, v in first.readings}
    assert first.profile == "host-resources" and "user_present" in values
    assert values["state"] == STATE_CODES["on"]  # with or without a user logged in
    assert [(f, v) for _, f, _, v in second.readings] == [("reachable", 0.0)]


class RecordingClient(SnmpClient):
    """The real client, noting when detection asks for sysObjectID (a Telegraf-style wrapper)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.asked: list[float] = []

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, Value]:
        if SYS_OBJECT_ID in oids:
            self.asked.append(self.clock.now)
        return await super().get(target, oids)


def test_a_profile_is_detected_once_and_again_after_a_failure(
    agent: servers.Snmpd, profiles: ProfileSet
) -> None:
    clock = FakeClock()
    client = RecordingClient(clock)
    sink = MemorySink()
    results: list[PollResult] = []
    poller = Poller(
        [device("srv-9", agent, profile=None, timeout_s=0.2)],
        client,
        sink,
        profiles=profiles,
        clock=clock,
        settings=CollectorSettings(jitter_s=0),
        on_poll=results.append,
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await clock.run_until(10, 2)
        with agent.down():
            await clock.run_until(20, 2)  # fails at 20
        await clock.run_until(60, 2)  # back at 40 (backoff 20), then 50, 60
        stop.set()
        await task
        client.close()

    asyncio.run(scenario())
    assert [r.due for r in results] == [0, 10, 20, 40, 50, 60]
    assert client.asked == [0, 40]  # the first poll, and the first after the failure
    assert results[0].profile is not None and results[0].profile_reason
    assert sink.statuses["srv-9"].profile == results[0].profile


def test_a_device_no_profile_fits_answers_and_says_why(
    snmpd: servers.Snmpd, profiles: ProfileSet
) -> None:
    only_pdus = ProfileSet(
        profiles={"apc-rpdu2": profiles.profiles["apc-rpdu2"]},
        sources={"apc-rpdu2": profiles.sources["apc-rpdu2"]},
    )
    sink = MemorySink()
    poller = Poller([device("box-1", snmpd, profile=None)], SnmpClient(), sink, profiles=only_pdus)

    async def scenario() -> list[PollResult]:
        try:
            return await poller.poll_once()
        finally:
            poller.client.close()

    [result] = asyncio.run(scenario())
    assert result.ok and result.profile is None
    assert [(f, v) for _, f, _, v in result.readings] == [("reachable", 1.0)]
    [problem] = result.problems
    assert problem.startswith("nothing to read: no profile matches: sysObjectID 1.3.6.1.4.1.8072.")
    assert sink.statuses["box-1"].problems == (problem,)


def test_a_counter_going_backwards_is_a_problem_of_that_poll() -> None:
    state = DeviceState("pdu-1")
    assert state.counter_problems([("energy_wh_total", 1000.0), ("power_w", 50.0)]) == []
    assert state.counter_problems([("energy_wh_total", 1200.0)]) == []
    [problem] = state.counter_problems([("energy_wh_total", 10.0), ("power_w", 20.0)])
    assert problem.startswith("energy_wh_total went backwards from 1200 to 10 Wh")
    assert state.counter_problems([("energy_wh_total", 20.0)]) == []
