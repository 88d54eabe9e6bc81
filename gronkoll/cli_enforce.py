"""The enforcement commands: ``shutdown now``, ``report shutdowns`` and ``audit``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gronkoll.settings import config_path, load_settings
from gronkoll.timeparse import parse_report_time

Command = Callable[..., argparse.ArgumentParser]


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _settings(args: argparse.Namespace) -> Any:
    return load_settings(config_path(getattr(args, "config", None)))


def cmd_shutdown_now(args: argparse.Namespace) -> int:
    """Shut a group, site or device's computers down at once; print what was sent to whom."""
    now = importlib.import_module("gronkoll.schedules.now")
    result: int = now.shutdown_now(
        _settings(args),
        group=args.group,
        site=args.site,
        device=args.device,
        dry_run=args.dry_run,
        out=_out,
    )
    return result


def cmd_report_shutdowns(args: argparse.Namespace) -> int:
    """Per night: computers targeted, off, non-compliant by reason, kWh, SEK, kg CO2e saved."""
    from gronkoll.runtime import Runtime
    from gronkoll.savings import close_intervals
    from gronkoll.shutdown_report import parse_night, render, shutdown_report

    settings = _settings(args)
    first, end = parse_night(args.start, "--from"), parse_night(args.end, "--to")
    with Runtime(settings) as runtime:
        close_intervals(runtime.state, runtime.store, settings, now=datetime.now(UTC))
        report = shutdown_report(
            runtime.state, settings, runtime.factors, first=first, end=end, by=args.by or "all"
        )
    sys.stdout.write(render(report, args.format))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the audit log: shutdown commands, outcomes, overrides, missed jobs."""
    from gronkoll.audit import render
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    bounds = {}
    for name, option in (("start", "--from"), ("end", "--to")):
        if getattr(args, name) is not None:
            ms = parse_report_time(getattr(args, name), settings.tz, option=option)
            bounds[name] = datetime.fromtimestamp(ms / 1000, UTC)
    with Runtime(settings) as runtime:
        records = runtime.state.audit_log(**bounds, device=args.device)
    sys.stdout.write(render(records, args.format, settings.tz))
    return 0


def add_now(shutdown_sub: Any, command: Command) -> None:
    """``gronkoll shutdown now``, under the shutdown command."""
    p = command("now", cmd_shutdown_now, shutdown_sub)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", help="every computer of this group")
    which.add_argument("--site", help="every computer of this site")
    which.add_argument("--device", help="this computer")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")


def add_report(report_sub: Any, command: Command) -> None:
    """``gronkoll report shutdowns``, under the report command."""
    p = command("shutdowns", cmd_report_shutdowns, report_sub)
    p.add_argument("--from", dest="start", required=True, metavar="DATE", help="first night")
    p.add_argument("--to", dest="end", required=True, metavar="DATE", help="exclusive")
    p.add_argument(
        "--by", choices=("site", "group"), default=None, help="per site or group (default: all)"
    )
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )


def add_audit(sub: Any, command: Command) -> None:
    """``gronkoll audit``."""
    p = command("audit", cmd_audit, sub)
    p.add_argument("--from", dest="start", metavar="DATE", help="local date or ISO 8601 time")
    p.add_argument("--to", dest="end", metavar="DATE", help="exclusive; local date or ISO time")
    p.add_argument("--device", help="only this device")
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
