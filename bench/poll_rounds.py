"""Gronkoll's poller, round after round, in a process of its own; prints one JSON line.

Run by bench/snmp_poll.py as ``python bench/poll_rounds.py CONFIG --warmup 1 --rounds 3``.
Each round is what ``gronkoll collect --once`` does once it has started: the same
config loading, profile check, Runtime, StoreSink and SnmpClient (collector/run.py), then
``Poller.poll_once()`` over every device, which reads each device through its profile
(collector/readout.py) and stores the readings through the Ingestor and the status rows in
the state database. A round is timed from the call of ``poll_once`` to its return, so it
includes the final flush to the store. As in the collector service, one SnmpClient (and so
one UDP socket for the v2c agents) serves all rounds; what it learnt in the warm-up round
it keeps.

The output: round times in seconds (warm-up and timed), the CPU seconds this process used
in each timed round, devices that answered per round, readings stored, and the peak RSS of
this process in MB.

    .venv/bin/python bench/poll_rounds.py /tmp/bench/gronkoll.yaml --rounds 3 --profile out.prof
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import resource
import sys
import time

from gronkoll.collector.poller import Poller, PollResult
from gronkoll.collector.run import StoreSink, checked_profiles, snmp_devices
from gronkoll.collector.snmp import SnmpClient
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings


def cpu_s() -> float:
    """CPU seconds of this process, all threads (the store writer's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def first_error(results: list[PollResult]) -> str | None:
    """One failing device's error, to show why a round was not complete."""
    return next((r.error for r in results if r.error), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the timed rounds to this file")
    args = parser.parse_args()

    # As `collect --once` does: the per-device outcome is counted here, not logged.
    logging.getLogger("gronkoll.collector").setLevel(logging.ERROR)
    settings = load_settings(args.config)
    profiles = checked_profiles(settings)
    devices = snmp_devices(settings)
    seconds: dict[bool, list[float]] = {False: [], True: []}  # by timed
    answered: dict[bool, list[int]] = {False: [], True: []}
    cpu: list[float] = []  # timed rounds
    errors: list[str] = []
    with Runtime(settings) as runtime:
        sink = StoreSink(runtime)
        runtime.ingestor  # noqa: B018 (open the store before the first round, as collect does)

        async def rounds() -> None:
            client = SnmpClient()
            profiler = cProfile.Profile() if args.profile else None
            previous: Poller | None = None
            try:
                for n in range(args.warmup + args.rounds):
                    timed = n >= args.warmup
                    poller = Poller(
                        devices,
                        client,
                        sink,
                        profiles=profiles,
                        settings=settings.collector,
                        known=runtime.state.device_status(),
                    )
                    if previous is not None:
                        # Rounds share device state as a running `gronkoll collect` does: the
                        # warm-up round detects and walks the tables, later rounds GET known rows.
                        poller.states = previous.states
                    previous = poller
                    if profiler and timed:
                        profiler.enable()
                    cpu_before, start = cpu_s(), time.perf_counter()
                    results = await poller.poll_once()
                    seconds[timed].append(time.perf_counter() - start)
                    if timed:
                        cpu.append(cpu_s() - cpu_before)
                    if profiler and timed:
                        profiler.disable()
                    answered[timed].append(sum(r.ok for r in results))
                    error = first_error(results)
                    if error:
                        errors.append(error)
            finally:
                client.close()
                if profiler:
                    profiler.dump_stats(args.profile)

        asyncio.run(rounds())
    out = {
        "devices": len(devices),
        "warmup_s": seconds[False],
        "round_s": seconds[True],
        "cpu_s": cpu,
        "warmup_answered": answered[False],
        "answered": answered[True],
        "stored": sink.stored,
        "errors": errors[:3],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
