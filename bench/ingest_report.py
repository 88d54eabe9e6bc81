"""Benchmark: one year of 15-minute power readings for 1,000 devices through the energy engine.

Measures, in one run and on one machine, side by side:

* Gronkoll: readings/s through the whole ingestion path (energy engine, SQLite store with its
  rollups, saved integration state), then the time of a year report by site by day, and the
  process's peak RSS;
* the limit for writing: the same readings as 3-column rows (device, time, value) inserted with
  a bare ``sqlite3`` ``executemany`` into a WAL database, in 5,000-row transactions;
* the report without rollups: a plain ``GROUP BY`` over the raw intervals Gronkoll stored
  (per series and UTC+1 day; it skips the DST and site mapping, which favours the baseline).

Only the ingest and insert calls are timed; making the readings is not. Targets (issue 2):
ingestion >= 20 % of the bare insert rate, the year report < 100 ms and >= 50x faster than the
raw scan, peak RSS < 500 MB.

    .venv/bin/python bench/ingest_report.py                # the full run (35 million readings)
    .venv/bin/python bench/ingest_report.py --days 30      # a quicker look
"""

from __future__ import annotations

import argparse
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gronkoll.carbon import factors
from gronkoll.reports import energy_report
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings, parse_settings
from gronkoll.timeparse import local_midnight_ms

STEP_MS = 15 * 60 * 1000
START = datetime(2025, 1, 1, tzinfo=UTC)


def bench_settings(folder: Path, devices: int, sites: int) -> Settings:
    data = {
        "municipality": {"name": "Benchby", "timezone": "Europe/Stockholm"},
        "sites": [{"id": f"site{s:02d}", "kind": "server_room"} for s in range(sites)],
        "devices": [
            {
                "id": f"dev{i:04d}",
                "site": f"site{i % sites:02d}",
                "kind": "server",
                "rated_power_w": 2000,
            }
            for i in range(devices)
        ],
        "store": {"kind": "sqlite", "path": "data"},
    }
    return parse_settings(data, folder / "gronkoll.yaml")


def chunks(devices: int, steps: int, per_chunk: int) -> object:
    """Readings in time order, per_chunk time steps of every device at a time."""
    names = [f"dev{i:04d}" for i in range(devices)]
    base_w = [150.0 + (i * 37) % 400 for i in range(devices)]
    t0 = int(START.timestamp() * 1000)
    for first in range(0, steps, per_chunk):
        yield [
            (names[i], "power_w", t0 + k * STEP_MS, base_w[i] + (k * 7 + i) % 50)
            for k in range(first, min(first + per_chunk, steps))
            for i in range(devices)
        ]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--chunk-steps", type=int, default=50, help="time steps per ingest call")
    parser.add_argument("--dir", help="folder for the databases (default: a temporary one)")
    args = parser.parse_args()

    folder = Path(args.dir or tempfile.mkdtemp(prefix="gronkoll-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    steps = args.days * 96
    total = args.devices * steps
    settings = bench_settings(folder, args.devices, args.sites)
    print(
        f"# {total:,} readings: {args.devices} devices x {args.days} days x 96 per day, in {folder}"
    )
    print(
        f"# {platform.node()} {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {datetime.now(UTC).isoformat(timespec='seconds')}"
    )

    # -- Gronkoll: engine + store + rollups + saved state ---------------------------------
    ingest_s = 0.0
    with Runtime(settings) as rt:
        ingestor = rt.ingestor
        for chunk in chunks(args.devices, steps, args.chunk_steps):
            t = time.perf_counter()
            ingestor.ingest(chunk)
            ingest_s += time.perf_counter() - t
        tz = settings.tz
        start = local_midnight_ms(datetime.fromtimestamp(START.timestamp(), tz).date(), tz)
        end_date = datetime.fromtimestamp((START.timestamp() + args.days * 86400), tz).date()
        end = local_midnight_ms(end_date, tz)
        fs = factors(settings)
        times = []
        for _ in range(7):
            t = time.perf_counter()
            report = energy_report(
                rt.store, fs, tz, start_ms=start, end_ms=end, by="site", bucket="day"
            )
            times.append(time.perf_counter() - t)
        report_s = statistics.median(times)
        rss = peak_rss_mb()
    gronkoll_rate = total / ingest_s

    # -- the raw scan: a plain GROUP BY over the stored intervals ----------------------------
    db = sqlite3.connect(settings.store_path / "timeseries.db")
    t = time.perf_counter()
    raw = db.execute(
        "SELECT series, (t + 3600000) / 86400000 AS day, sum(wh) FROM readings "
        "WHERE wh IS NOT NULL GROUP BY series, day"
    ).fetchall()
    scan_s = time.perf_counter() - t
    db.close()

    # -- the limit for writing: bare executemany of the same readings -----------------------
    bare_path = folder / "bare.db"
    bare = sqlite3.connect(bare_path, isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")
    bare.execute("CREATE TABLE readings(device INTEGER, t INTEGER, value REAL)")
    bare_s = 0.0
    for chunk in chunks(args.devices, steps, args.chunk_steps):
        rows = [(int(d[3:]), t, v) for d, _, t, v in chunk]
        t0 = time.perf_counter()
        for i in range(0, len(rows), 5000):
            bare.execute("BEGIN")
            bare.executemany("INSERT INTO readings VALUES (?, ?, ?)", rows[i : i + 5000])
            bare.execute("COMMIT")
        bare_s += time.perf_counter() - t0
    bare.close()
    bare_rate = total / bare_s

    energy = sum(r.energy_kwh for r in report.rows)
    raw_energy = sum(r[2] for r in raw) / 1000
    print()
    print(f"{'':34}{'Gronkoll':>14}{'baseline':>14}{'ratio':>10}")
    print(
        f"{'ingest, readings/s':34}{gronkoll_rate:>14,.0f}{bare_rate:>14,.0f}"
        f"{gronkoll_rate / bare_rate:>9.1%}   (target >= 20%)"
    )
    print(
        f"{'year report by site by day, ms':34}{report_s * 1000:>14.1f}{scan_s * 1000:>14.1f}"
        f"{scan_s / report_s:>9.0f}x   (targets < 100 ms, >= 50x)"
    )
    print(f"{'peak RSS, MB':34}{rss:>14.0f}{'':>14}{'':>10}   (target < 500 MB)")
    print()
    print(
        f"# report rows: {len(report.rows):,}, energy {energy:,.1f} kWh; raw scan {raw_energy:,.1f} kWh"
    )
    print(f"# ingest {ingest_s:.1f} s, bare insert {bare_s:.1f} s, raw scan rows {len(raw):,}")
    ok = (
        gronkoll_rate >= 0.2 * bare_rate
        and report_s < 0.1
        and scan_s / report_s >= 50
        and rss < 500
    )
    print("# all targets met" if ok else "# TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
