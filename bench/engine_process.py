"""Benchmark: the energy engine's CPU per MQTT message, this tree against a git revision's.

The readings are those the MQTT pipeline makes of bench/mqtt_ingest.py's messages (10,000
devices, 20 messages each, six formats, ~3.3 readings per message), in batches of 500 messages
as the commit worker gets them: one reading per (device, field) series in most batches. Some
messages are delivered twice (``--redeliver``), as after a reconnect, so repeats are dropped.

Both engines get the same batches, numbering series in memory; only their work is timed
(process CPU time, the best of ``--rounds``):

* this tree: ``EnergyEngine.process(batch, drop_repeats=True)``, then ``settle()``;
* the baseline (``gronkoll/energy.py`` at ``--baseline``, loaded from git; by default the
  engine before it dropped repeats itself, commit 40d835a):
  the repeat filter the MQTT pipeline ran before it (each reading's series asked for its
  newest time), then ``process(fresh)`` and ``settle()``.

The readings are frozen out of the garbage collector's way first (``gc.freeze``), as a
worker holds only its current batch. Before timing, both run once in step and every batch's
output (rows with their series ids, hourly energy, events, counts, latest, time range) is
compared: the figures are only printed if they are equal. The machine may be busy with other
work: the figures are indicative.

    .venv/bin/python bench/engine_process.py                       # 10,000 devices x 20
    .venv/bin/python bench/engine_process.py --devices 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from gronkoll.collector.messages import Message, MessagePipeline
from gronkoll.devices import energy_models
from gronkoll.energy import EnergyEngine
from gronkoll.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent))
import mqtt_ingest  # noqa: E402  (bench/, beside this script)

Reading = tuple[str, str, int, float]
BASE_MS = 1_738_569_600_000  # fixed receive times, as in a replay
BEFORE = "40d835a"  # main before the engine dropped repeats itself


def baseline_module(rev: str) -> ModuleType:
    """gronkoll/energy.py as it is at a git revision, imported under another name."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:gronkoll/energy.py"],  # noqa: S607  (git from PATH)
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("baseline_energy", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    exec(compile(source, f"{rev}:gronkoll/energy.py", "exec"), module.__dict__)  # noqa: S102
    return module


def batches(devices: int, per_device: int, size: int, redeliver: int) -> list[list[Reading]]:
    """The readings of each batch of messages, as MessagePipeline.handle makes them."""
    with tempfile.TemporaryDirectory(prefix="gronkoll-engine-bench") as folder:
        settings = load_settings(mqtt_ingest.write_config(Path(folder), 1883, devices, "bench"))
    pipeline = MessagePipeline(settings)
    msgs = mqtt_ingest.messages(devices, per_device)
    handled = [
        pipeline.handle(Message(topic, payload.encode(), BASE_MS + (i // devices) * 300_000 + i))
        for i, (topic, payload) in enumerate(msgs)
    ]
    # a reconnect: a stretch of messages comes again, after the batches that held them
    handled += handled[devices * 3 : devices * 3 + redeliver]
    return [
        [r for h in handled[i : i + size] for r in h.readings] for i in range(0, len(handled), size)
    ]


def run_new(engine: EnergyEngine, parts: list[list[Reading]], keep: bool) -> list[tuple[Any, int]]:
    out = []
    for readings in parts:
        batch = engine.process(readings, drop_repeats=True)
        if keep:  # only to compare: a collector drops each batch once stored
            out.append((batch, batch.repeats))
        engine.settle()
    return out


def run_baseline(engine: Any, parts: list[list[Reading]], keep: bool) -> list[tuple[Any, int]]:
    out = []
    for readings in parts:
        newest: dict[tuple[str, str], int | None] = {}
        fresh = []
        for reading in readings:  # main's MessagePipeline._newer_than_processed
            key = (reading[0], reading[1])
            if key not in newest:
                newest[key] = engine.last_time(*key)
            last = newest[key]
            if last is None or reading[2] > last:
                fresh.append(reading)
        batch = engine.process(fresh)
        if keep:
            out.append((batch, len(readings) - len(fresh)))
        engine.settle()
    return out


def summary(output: tuple[Any, int]) -> tuple[Any, ...]:
    batch, repeats = output
    return (
        batch.rows,
        batch.hourly,
        batch.events,
        batch.intervals,
        batch.duplicates,
        len(batch.unknown),
        batch.latest,
        batch.t_min,
        batch.t_max,
        repeats,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--per-device", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="messages per batch")
    parser.add_argument("--redeliver", type=int, default=700, help="messages delivered twice")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BEFORE, help="git revision to compare with")
    args = parser.parse_args()

    old = baseline_module(args.baseline)
    with tempfile.TemporaryDirectory(prefix="gronkoll-engine-bench") as folder:
        config = mqtt_ingest.write_config(Path(folder), 1883, args.devices, "bench")
        models = energy_models(load_settings(config))
    parts = batches(args.devices, args.per_device, args.batch, args.redeliver)
    messages = args.devices * args.per_device + args.redeliver
    readings = sum(len(p) for p in parts)

    # the same output, batch by batch, before anything is timed
    new_engine, old_engine = EnergyEngine(models), old.EnergyEngine(models)
    for readings_of_batch in parts:
        (new,) = run_new(new_engine, [readings_of_batch], keep=True)
        (old_output,) = run_baseline(old_engine, [readings_of_batch], keep=True)
        if summary(new) != summary(old_output):
            print("the engines' outputs differ: no figures")  # noqa: T201
            return 1
    del new_engine, old_engine, new, old_output

    # The readings made up front stay out of the garbage collector's passes: a commit worker
    # does not hold a run's readings, and both engines would pay for scanning them.
    gc.collect()
    gc.freeze()
    best = {"this tree": float("inf"), f"baseline ({args.baseline})": float("inf")}
    for _ in range(args.rounds):
        for name in best:
            engine = EnergyEngine(models) if name == "this tree" else old.EnergyEngine(models)
            run = run_new if name == "this tree" else run_baseline
            gc.collect()  # each run starts with the same heap to collect
            start = time.process_time()
            run(engine, parts, keep=False)
            best[name] = min(best[name], time.process_time() - start)

    print(  # noqa: T201
        f"# {messages:,} messages ({readings:,} readings) from {args.devices:,} devices in "
        f"batches of {args.batch}; {args.redeliver} delivered twice; outputs equal\n"
        f"# {platform.machine()}, Python {platform.python_version()}; CPU time, best of "
        f"{args.rounds}; a shared machine: indicative figures"
    )
    baseline = best[f"baseline ({args.baseline})"]
    for name, used in best.items():
        print(  # noqa: T201
            f"{name:24s} {used / messages * 1e6:6.1f} us/msg  {used / readings * 1e6:5.2f} "
            f"us/reading  {baseline / used:4.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
