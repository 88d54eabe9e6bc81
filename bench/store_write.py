"""Benchmark: the MQTT commit worker's writes, SqliteStore.write and the integration state save.

The messages of bench/mqtt_ingest.py (``--devices`` devices, ``--per-device`` messages each,
round-robin, one message every 3 ms of device time) go through the collector's decoders and
the energy engine once, in batches of ``--batch`` as the commit worker takes them; the
resulting batches are then written to a fresh SQLite store ``--repeat`` times, and every
device's integration state is saved to a fresh SQLite state database as `Ingestor.flush`
does every few seconds (each device's row already there: the collector's steady state).

Side by side in the same run, with CPU time (process_time; the best of the repeats):

* write: as the store writes now, and as it wrote at git revision ``--baseline`` (the
  gronkoll/stores/sqlite.py of that commit, loaded beside this one), per message;
* state save, per device, from the engine's export_state to the committed rows: as
  `Ingestor.flush` saves now (each state encoded as it is exported, one upsert through the
  driver), and as it did before (a dict of every state, json.dumps, SQLAlchemy Core's
  select, update and insert; ``core_save`` below keeps that code).

The machine is shared with other work, so the figures are indicative; the ratios hold better.

    .venv/bin/python bench/store_write.py                      # 10,000 devices x 20 messages
    .venv/bin/python bench/store_write.py --devices 2000 --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update

from gronkoll.collector.messages import Message, MessagePipeline
from gronkoll.energy import Batch, EnergyEngine
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.state_base import _now
from gronkoll.statedb import IntegrationState, StateDB
from gronkoll.stores.base import Attribution
from gronkoll.stores.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mqtt_ingest  # noqa: E402  (bench/, beside this script: the same messages and config)

BASE_MS = 1_738_569_600_000  # 2025-02-03 08:00 UTC: fixed, so every run writes the same data
States = Mapping[str, Mapping[str, Any]]


def record(
    folder: Path, devices: int, per: int, size: int
) -> tuple[list[Batch], Any, EnergyEngine]:
    """The engine's batches for the messages, the store's series, and the engine after them."""
    config = mqtt_ingest.write_config(folder, 1883, devices, "bench-store")
    os.chdir(folder)  # the config's store path is relative
    settings = load_settings(config)
    texts = mqtt_ingest.messages(devices, per)
    messages = [
        Message(topic, payload.encode(), BASE_MS + (i // devices) * 300_000 + (i % devices) * 3)
        for i, (topic, payload) in enumerate(texts)
    ]
    batches = []
    with Runtime(settings) as rt:
        pipeline, ingestor = MessagePipeline(settings), rt.ingestor
        for start in range(0, len(messages), size):
            handled = [pipeline.handle(m) for m in messages[start : start + size]]
            readings = [r for h in handled for r in h.readings]
            batch = ingestor.engine.process(readings, drop_repeats=True)
            ingestor.store.write(batch, ingestor.attribution)
            ingestor.engine.settle()
            batches.append(batch)
        store = cast(SqliteStore, ingestor.store)
        series = [(i, d, f) for (d, f), i in store._series.items()]
        return batches, (series, ingestor.attribution, settings.tz), ingestor.engine


def store_at(revision: str, folder: Path) -> type[SqliteStore]:
    """SqliteStore as gronkoll/stores/sqlite.py was at a git revision of this repository."""
    text = subprocess.run(
        ["git", "show", f"{revision}:gronkoll/stores/sqlite.py"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "sqlite_baseline.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sqlite_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(type[SqliteStore], module.SqliteStore)


def time_writes(
    store_class: type[SqliteStore],
    folder: Path,
    batches: list[Batch],
    series: list[Any],
    attr: Mapping[str, Attribution],
    tz: Any,
) -> float:
    """CPU seconds to write every batch to a fresh store (its series numbered beforehand)."""
    store = store_class(Path(tempfile.mkdtemp(dir=folder)) / "store.sqlite", tz)
    store._db.executemany("INSERT INTO series VALUES (?, ?, ?)", series)
    start = time.process_time()
    for batch in batches:
        store.write(batch, attr)
    used = time.process_time() - start
    store.close()
    return used


def core_save(db: StateDB, states: States) -> None:
    """The state save as it was: json.dumps, then SQLAlchemy Core select, update and insert."""
    now = _now()
    rows = [
        {"d": d, "s": json.dumps(s, separators=(",", ":")), "u": now} for d, s in states.items()
    ]
    table = cast(Table, IntegrationState.__table__)
    with db.engine.begin() as conn:
        existing = set(
            conn.scalars(select(table.c.device_id).where(table.c.device_id.in_(list(states))))
        )
        updates = [r for r in rows if r["d"] in existing]
        inserts = [r for r in rows if r["d"] not in existing]
        if updates:
            conn.execute(
                update(table)
                .where(table.c.device_id == bindparam("d"))
                .values(state=bindparam("s"), updated_at=bindparam("u")),
                updates,
            )
        if inserts:
            conn.execute(
                insert(table).values(
                    device_id=bindparam("d"), state=bindparam("s"), updated_at=bindparam("u")
                ),
                inserts,
            )


def save_now(db: StateDB, engine: EnergyEngine) -> None:
    """As Ingestor.flush saves every device now: each state encoded as it is exported."""
    db.save_integration_states((d, engine.export_state(d)) for d in engine.models)


def save_before(db: StateDB, engine: EnergyEngine) -> None:
    """As Ingestor.flush saved every device before: a dict of states, then core_save."""
    core_save(db, {d: engine.export_state(d) for d in engine.models})


def time_saves(
    folder: Path, engine: EnergyEngine, save: Callable[[StateDB, EnergyEngine], None]
) -> float:
    """CPU seconds to save every device's state once more (each row already there)."""
    db = StateDB(f"sqlite:///{tempfile.mkdtemp(dir=folder)}/state.sqlite")
    save(db, engine)
    start = time.process_time()
    save(db, engine)
    used = time.process_time() - start
    db.close()
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--per-device", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline", default="40d835a", help="git revision of the store to compare with"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-write-") as tmp:
        folder = Path(tmp)
        batches, (series, attr, tz), engine = record(
            folder, args.devices, args.per_device, args.batch
        )
        count = args.devices * args.per_device
        rows = sum(len(b.rows) for b in batches)
        print(
            f"{count:,} messages, {rows:,} readings, {len(batches)} batches; {len(engine.models):,} devices"
        )
        print(
            f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, best of {args.repeat}"
        )
        stores = {"now": SqliteStore, args.baseline: store_at(args.baseline, folder)}
        written: dict[str, list[float]] = {name: [] for name in stores}
        saved: dict[str, list[float]] = {"now": [], "before": []}
        for _ in range(args.repeat):  # alternating, so both see the same machine load
            for name, store_class in stores.items():
                used = time_writes(store_class, folder, batches, series, attr, tz)
                written[name].append(used / count)
            saved["now"].append(time_saves(folder, engine, save_now))
            saved["before"].append(time_saves(folder, engine, save_before))
    print("SqliteStore.write, CPU us per message:")
    for name, figures in written.items():
        print(f"  {name:22s} {min(figures) * 1e6:6.2f}")
    print(f"  ratio now / {args.baseline}: {min(written['now']) / min(written[args.baseline]):.2f}")
    print("state save (export_state, encode, upsert), CPU us per device:")
    for name, figures in saved.items():
        print(f"  {name:22s} {min(figures) / len(engine.models) * 1e6:6.2f}")
    print(f"  ratio now / before: {min(saved['now']) / min(saved['before']):.2f}")


if __name__ == "__main__":
    main()
