"""``gronkoll demo``: a fictional municipality with simulated readings, a key, and the API.

Writes a real config file, feeds ``days`` days of simulated readings (gronkoll.simulate)
through the ordinary ingestion path, creates a viewer API key, prints a summary with
reports and example commands, then serves the API unless told not to.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gronkoll import demo_influx
from gronkoll.demo_config import demo_config, write_config
from gronkoll.errors import InputError
from gronkoll.reports import energy_report, render
from gronkoll.runtime import Runtime
from gronkoll.school_days import calendar, school_break
from gronkoll.settings import DEFAULT_CONFIG_NAME, Settings, load_settings
from gronkoll.simulate import Simulation
from gronkoll.statedb import StateDB
from gronkoll.timeparse import local_midnight_ms

KEY_NAME = "demo"
RECORD_NAME = "demo.json"  # the period and seed simulated, once all is stored
PROGRESS_DAYS = 10


def end_date(text: str | None, tz: ZoneInfo) -> date:
    """The simulation's (exclusive) last local date: the argument, or today."""
    if text is None:
        return datetime.now(tz).date()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--end {text!r}: not a date (expected YYYY-MM-DD)") from None


def feed(runtime: Runtime, first: date, end: date, seed: int, closed: set[date]) -> int:
    """Simulate [first, end), ingesting one local day (one batch) at a time; the readings sent."""
    days = (end - first).days
    sim = Simulation(runtime.settings, random.Random(seed))
    sim.plan_meter_swap(first, days)
    ingestor = runtime.ingestor
    readings = 0
    started = time.perf_counter()
    for n, day in enumerate(calendar(first, end, runtime.settings.tz, closed), start=1):
        batch = sim.day(day)
        ingestor.ingest(batch)
        readings += len(batch)
        if n % PROGRESS_DAYS == 0 and n < days:
            rate = readings / (time.perf_counter() - started)
            sys.stderr.write(
                f"demo: {n}/{days} days simulated, {readings:,} readings ({rate:,.0f}/s)\n"
            )
    seconds = time.perf_counter() - started
    sys.stderr.write(
        f"demo: {readings:,} readings in {seconds:.1f} s ({readings / max(seconds, 1e-9):,.0f}/s)\n"
    )
    return readings


def check_record(path: Path, run: dict[str, Any]) -> bool:
    """True when the folder already holds this very run; refuse one of another period or seed."""
    if not path.exists():
        return False
    done = json.loads(path.read_text(encoding="utf-8"))
    if done != run:
        raise InputError(
            f"{path.parent}: holds a demo of {done['first']} to {done['end']} with seed "
            f"{done['seed']}; choose another --dir or delete this folder"
        )
    return True


def create_key(state: StateDB) -> tuple[str, str]:
    """A new viewer key named demo, or demo-2, demo-3, ... when the folder is reused."""
    taken = {k.name for k in state.list_api_keys()}
    name, n = KEY_NAME, 1
    while name in taken:
        n += 1
        name = f"{KEY_NAME}-{n}"
    return name, state.create_api_key(name, "viewer")


def server_room_line(runtime: Runtime, first: date, end: date) -> str:
    """PUE and ERF of the server rooms over the period (methodology: ISO/IEC 30134-2 and -6)."""
    kind = {d.id: d.kind for d in runtime.settings.devices}
    wh: dict[str, float] = {}
    for quantity in ("electricity", "heat"):
        for _, device, value in runtime.store.energy_by_day(quantity, "device", first, end):
            wh[kind.get(device, "")] = wh.get(kind.get(device, ""), 0.0) + value
    it, facility, heat = wh.get("pdu", 0.0), wh.get("meter", 0.0), wh.get("heat_meter", 0.0)
    if not it or not facility:
        return "Server room: no IT or facility energy recorded"
    return (
        f"Server room: IT (PDUs) {it / 1000:,.0f} kWh, facility meter {facility / 1000:,.0f} kWh, "
        f"heat recovered {heat / 1000:,.0f} kWh: PUE {facility / it:.2f}, ERF {heat / facility:.2f}"
    )


def summary(
    runtime: Runtime,
    config: Path,
    period: tuple[date, date],
    school_break: str,
    url: str,
    key: tuple[str, str],
) -> str:
    """What the demo built: counts, two reports, the API and commands to try."""
    settings, store, tz = runtime.settings, runtime.store, runtime.settings.tz
    first, end = period
    counts = store.counts()
    start_ms, end_ms = local_midnight_ms(first, tz), local_midnight_ms(end, tz)
    recent = max(first, end - timedelta(days=30))
    weekly = energy_report(
        store,
        runtime.factors,
        tz,
        start_ms=local_midnight_ms(recent, tz),
        end_ms=end_ms,
        by="kind",
        bucket="week",
    )
    whole = energy_report(
        store, runtime.factors, tz, start_ms=start_ms, end_ms=end_ms, by="site", bucket="none"
    )
    f, t = first.isoformat(), end.isoformat()
    kinds: dict[str, int] = {}
    for d in settings.devices:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    lines = [
        f"Gronkoll demo: {settings.municipality.name}",
        f"  folder:    {config.parent}",
        f"  config:    {config}",
        f"  devices:   {len(settings.devices)} ("
        + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + ")",
        f"  simulated: {f} to {t} (end exclusive, {(end - first).days} days, "
        f"school break: {school_break})",
        f"  stored:    {counts['readings']:,} readings, {counts['intervals']:,} "
        # InfluxDB keeps energy per device and hour (docs/influxdb.md), not per interval.
        + ("energy intervals, " if settings.store.kind == "sqlite" else "hourly energy points, ")
        + f"{counts['events']:,} events",
    ]
    lines += [
        "",
        f"Last {(end - recent).days} days by kind, per week:",
        render(weekly, "table", tz),
        "The whole period by site:",
        render(whole, "table", tz).rstrip("\n"),
        server_room_line(runtime, first, end),
        "",
        f"API:      {url}",
        f"API key:  {key[1]}  (name {key[0]}, role viewer; shown only now)",
        "Try:",
        f"  curl -s -H 'Authorization: Bearer {key[1]}' "
        f"'{url}/api/v1/energy?from={f}&to={t}&by=site&bucket=month'",
        f"  gronkoll -c {shlex.quote(str(config))} report energy --from {f} --to {t} "
        "--by site --bucket month",
        "",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Build the demo in args.dir (or a new temporary folder) and serve it unless args.no_serve."""
    if args.days < 1:
        raise InputError(f"--days {args.days}: expected at least 1")
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="gronkoll-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    config = (folder / DEFAULT_CONFIG_NAME).resolve()
    influxdb = getattr(args, "influxdb", None)
    store = demo_influx.store_section(influxdb, args.influxdb_database) if influxdb else None
    write_config(config, demo_config(args.host or "127.0.0.1", args.port or 8000, store))
    settings: Settings = load_settings(config)
    if influxdb:
        demo_influx.create_database(settings)
    end = end_date(args.end, settings.tz)
    first = end - timedelta(days=args.days)
    holiday = school_break(first, end)
    closed = {holiday[1] + timedelta(days=i) for i in range(5)} if holiday else set()
    record = config.parent / RECORD_NAME
    run = {"first": first.isoformat(), "end": end.isoformat(), "seed": args.seed}
    with Runtime(settings) as runtime:
        if check_record(record, run):
            sys.stderr.write(f"demo: {folder} already holds this demo; reusing its readings\n")
        else:
            feed(runtime, first, end, args.seed, closed)
            if influxdb:
                demo_influx.finish(runtime, local_midnight_ms(end, settings.tz) - 60_000)
            record.write_text(json.dumps(run) + "\n", encoding="utf-8")
        key = create_key(runtime.state)
        url = f"http://{settings.api.host}:{settings.api.port}"
        brk = f"{holiday[0]} (week of {holiday[1].isoformat()})" if holiday else "none"
        sys.stdout.write(summary(runtime, config, (first, end), brk, url, key))
        sys.stdout.flush()
    if not args.no_serve:
        from gronkoll.server import serve

        serve(settings, host=args.host, port=args.port)
    return 0
