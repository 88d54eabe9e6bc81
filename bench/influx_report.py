"""Benchmark: the year's energy report read from InfluxDB (InfluxQL) beside the SQLite store.

Builds the demo municipality (627 devices) over ``--days`` days twice with the same seed,
once into the SQLite store and once into an InfluxDB 1.x server through the InfluxDB store
(as `gronkoll demo --influxdb` does), then times the same reports on both, in the same run:

* by device per month over the whole period (the largest answer: a row per device and day);
* by site per month, by kind per week, by group per day;
* by site per hour over the last 7 days.

Each report runs ``--repeat`` times per store after one warm-up; the median is printed with
the ratio InfluxDB / SQLite and a check that both gave the same total. The machine is shared
with other work, so the figures are indicative.

    .venv/bin/python bench/influx_report.py --influxdb http://127.0.0.1:8086           # a year
    .venv/bin/python bench/influx_report.py --influxdb http://127.0.0.1:8086 --days 30
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from gronkoll import demo_influx
from gronkoll.demo import RECORD_NAME, feed
from gronkoll.demo_config import demo_config, write_config
from gronkoll.reports import EnergyReport, energy_report
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.timeparse import local_midnight_ms

END = date(2026, 11, 1)
REPORTS = (  # by, bucket, days back from the end (None: the whole period)
    ("device", "month", None),
    ("site", "month", None),
    ("kind", "week", None),
    ("group", "day", None),
    ("site", "hour", 7),
)


def build(folder: Path, days: int, influxdb: str | None, database: str) -> tuple[Path, float]:
    """The demo's readings over [END - days, END) in folder's store; config and seconds taken.

    As `gronkoll demo` does, without its summary.
    """
    config = folder / "gronkoll.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    store = demo_influx.store_section(influxdb, database) if influxdb else None
    write_config(config, demo_config("127.0.0.1", 8000, store))
    if (folder / RECORD_NAME).exists():
        return config, 0.0  # built by an earlier run (or by `gronkoll demo`)
    settings = load_settings(config)
    demo_influx.create_database(settings)
    started = time.perf_counter()
    with Runtime(settings) as rt, contextlib.redirect_stderr(io.StringIO()):
        feed(rt, END - timedelta(days=days), END, 1, set())
        demo_influx.finish(rt, local_midnight_ms(END, settings.tz) - 60_000)
    (folder / RECORD_NAME).write_text("built\n", encoding="utf-8")
    return config, time.perf_counter() - started


def timed(config: Path, by: str, bucket: str, back: int | None, days: int, repeat: int):  # type: ignore[no-untyped-def]
    settings = load_settings(config)
    tz = settings.tz
    first = END - timedelta(days=back or days)
    start, end = local_midnight_ms(first, tz), local_midnight_ms(END, tz)
    times: list[float] = []
    report: EnergyReport | None = None
    with Runtime(settings) as rt:
        for i in range(repeat + 1):
            t = time.perf_counter()
            report = energy_report(
                rt.store, rt.factors, tz, start_ms=start, end_ms=end, by=by, bucket=bucket
            )
            if i:  # the first run warms caches and connections
                times.append(time.perf_counter() - t)
    assert report is not None
    return statistics.median(times), len(report.rows), report.energy_kwh


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--influxdb", required=True, help="URL of an InfluxDB 1.x server")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="reuse this folder (a demo already built is reused)")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="gronkoll-bench-"))
    database = (
        f"bench_{args.days}d_{uuid.uuid4().hex[:6]}" if not args.dir else f"bench_{args.days}d"
    )
    print(f"Python {platform.python_version()}, {platform.machine()}, {folder}")
    print(f"building the demo ({args.days} days, 627 devices) in SQLite and in InfluxDB ...")
    sqlite_config, sqlite_s = build(folder / "sqlite", args.days, None, database)
    influx_config, influx_s = build(folder / "influx", args.days, args.influxdb, database)
    print(f"  built: SQLite {sqlite_s:.0f} s, InfluxDB (through the spool) {influx_s:.0f} s")
    print(f"\nmedian of {args.repeat} runs; InfluxDB {args.influxdb} database {database}")
    head = f"{'report':<34}{'rows':>7}{'SQLite ms':>11}{'InfluxDB ms':>13}{'ratio':>8}  same kWh"
    print(head)
    print("-" * len(head))
    for by, bucket, back in REPORTS:
        span = f"last {back} days" if back else f"{args.days} days"
        s_time, s_rows, s_kwh = timed(sqlite_config, by, bucket, back, args.days, args.repeat)
        i_time, i_rows, i_kwh = timed(influx_config, by, bucket, back, args.days, args.repeat)
        same = "yes" if abs(s_kwh - i_kwh) < 0.001 * max(1, s_rows) and s_rows == i_rows else "NO"
        print(
            f"{f'by {by} per {bucket}, {span}':<34}{s_rows:>7}{s_time * 1000:>11.1f}"
            f"{i_time * 1000:>13.1f}{i_time / s_time:>7.1f}x  {same}"
        )
    print(
        "\nSQLite reads its hourly and daily rollups; InfluxDB sums hourly energy points with "
        "GROUP BY time(1d) tz() on the server and sends the answer in 10,000-row chunks."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
