"""The `gronkoll` commands that put readings into the store and look at its spool."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gronkoll.cli_common import EXIT_FAILURE, Command, SubParsers, _now_ms, _out, _settings


def cmd_spool_status(args: argparse.Namespace) -> int:
    """Print the InfluxDB store's spool: size, oldest entry and counters (no server needed)."""
    from gronkoll.stores.spool import Spool
    from gronkoll.stores.spool_status import render_status

    settings = _settings(args)
    path = settings.spool_path
    if path is None:
        _out("No spool: the store is sqlite (store.kind: influxdb spools its writes).")
        return 0
    if not path.exists():
        _out(f"No spool yet at {path}: nothing was queued.")
        return 0
    max_bytes = int(getattr(settings.store, "spool_max_mb", 0) * 1_000_000)
    spool = Spool(path, max_bytes=max_bytes)
    try:
        status = spool.status()
    finally:
        spool.close()
    sys.stdout.write(render_status(status, args.format, settings.tz, _now_ms()))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import readings from a CSV file."""
    from gronkoll.importer import format_summary, import_csv
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    path = Path(args.file)
    with Runtime(settings) as runtime:
        summary = import_csv(path, settings, runtime.ingestor, skip_bad=args.skip_bad)
    _out(format_summary(path, summary))
    return 0 if summary.imported else EXIT_FAILURE


def add_import(sub: SubParsers, command: Command) -> None:
    """Add import to the top-level command parser."""
    p = command("import", cmd_import)
    p.add_argument("file", metavar="FILE.csv", help="CSV with the header time,device,field,value")
    p.add_argument(
        "--skip-bad", action="store_true", help="import the good rows even if some are bad"
    )


def add_spool(sub: SubParsers, command: Command) -> None:
    """Add spool status to the top-level command parser."""
    spool = sub.add_parser(
        "spool", help="the InfluxDB store's spool", description="The InfluxDB store's spool."
    )
    spool_sub = spool.add_subparsers(dest="spool", required=True, metavar="ACTION")
    p = command("status", cmd_spool_status, spool_sub)
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
