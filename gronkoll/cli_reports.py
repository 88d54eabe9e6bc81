"""The `gronkoll` report commands: energy and CO2e, the latest power, the engine's events."""

from __future__ import annotations

import argparse
import sys

from gronkoll.cli_common import Command, SubParsers, _now_ms, _out, _settings
from gronkoll.power import BY as POWER_BY
from gronkoll.stores.base import DIMENSIONS
from gronkoll.timeparse import BUCKETS, iso_local, parse_report_time


def cmd_report_energy(args: argparse.Namespace) -> int:
    """Print energy and CO2e per key and bucket."""
    from gronkoll.reports import energy_report, render
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    tz = settings.tz
    start = parse_report_time(args.start, tz, option="--from")
    end = parse_report_time(args.end, tz, option="--to")
    with Runtime(settings) as runtime:
        report = energy_report(
            runtime.store,
            runtime.factors,
            tz,
            start_ms=start,
            end_ms=end,
            by=args.by,
            bucket=args.bucket,
        )
    sys.stdout.write(render(report, args.format, tz))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """Print what the energy engine recorded: gaps, resets, glitches, rejected values."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        events = runtime.store.events(args.device, args.limit)
    if not events:
        _out("No events recorded.")
    for device, t, kind, detail in reversed(events):
        _out(f"{iso_local(t, settings.tz)}  {device}  {kind}: {detail}")
    return 0


def cmd_report_power(args: argparse.Namespace) -> int:
    """Print the latest power in W per device, site or kind."""
    from gronkoll.power import power_report, render
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        report = power_report(settings, runtime.store, by=args.by, at_ms=_now_ms())
    sys.stdout.write(render(report, args.format, settings.tz))
    return 0


def add_reports(sub: SubParsers, command: Command) -> SubParsers:
    """Add report (energy, power) and events; return report's subcommands for more reports."""
    report = sub.add_parser("report", help="reports", description="Reports.")
    report_sub = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    p = command("energy", cmd_report_energy, report_sub)
    p.add_argument(
        "--from", dest="start", required=True, metavar="DATE", help="local date or ISO 8601 time"
    )
    p.add_argument(
        "--to",
        dest="end",
        required=True,
        metavar="DATE",
        help="exclusive; local date or ISO 8601 time",
    )
    p.add_argument("--by", choices=DIMENSIONS, default="site", help="grouping (default: site)")
    p.add_argument(
        "--bucket", choices=BUCKETS, default="day", help="time bucket in local time (default: day)"
    )
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )

    p = command("power", cmd_report_power, report_sub)
    p.add_argument("--by", choices=POWER_BY, default="site", help="default: site")
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )

    p = command("events", cmd_events)
    p.add_argument("--device", help="only this device")
    p.add_argument("--limit", type=int, default=50, help="newest N events (default: 50)")
    return report_sub
