"""The shutdown commands of the `gronkoll` command line: preview, overrides, schedule, run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

from gronkoll import cli_enforce
from gronkoll.errors import InputError
from gronkoll.settings import Settings, config_path, load_settings

Command = Callable[..., argparse.ArgumentParser]


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(getattr(args, "config", None)))


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option}: {text!r} is not a date (expected YYYY-MM-DD)") from None


def cmd_shutdown_preview(args: argparse.Namespace) -> int:
    """List a policy's planned shutdowns and wakes, local time and UTC, skipping days off."""
    from gronkoll.shutdown_plan import plan, skipped_days

    settings = _settings(args)
    policy = settings.shutdown.policy(args.policy)
    if policy is None:
        known = ", ".join(p.name for p in settings.shutdown.policies) or "none configured"
        raise InputError(f"--policy: no policy named {args.policy!r} (known: {known})")
    if args.days < 1:
        raise InputError(f"--days: expected a number of days, 1 or more; got {args.days}")
    tz = settings.tz
    first = _date(args.start, "--from") if args.start else datetime.now(UTC).astimezone(tz).date()
    actions = plan(settings, policy, first, args.days)
    if args.format == "json":
        _out(json.dumps([a.as_json(tz) for a in actions], indent=2))
        return 0
    _out(
        f"Policy {policy.name} from {first} for {args.days} days ({settings.municipality.timezone})"
    )
    lines = [f"{'local':<29}  {'utc':<25}  action"]
    for a in actions:
        item = a.as_json(tz)
        lines.append(f"{a.at.astimezone(tz):%a} {item['local']:<25}  {item['utc']:<25}  {a.action}")
    if not actions:
        lines.append("(nothing planned)")
    for day, reason in skipped_days(settings, policy, first, args.days):
        lines.append(f"skipped {day:%a} {day}: {reason}")
    _out("\n".join(lines))
    return 0


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], command: Command
) -> None:
    """Add the shutdown commands to the top-level command parser."""
    shutdown = sub.add_parser(
        "shutdown", help="scheduled shutdowns", description="Scheduled shutdowns of computers."
    )
    shutdown_sub = shutdown.add_subparsers(dest="shutdown", required=True, metavar="ACTION")
    p = command("preview", cmd_shutdown_preview, shutdown_sub)
    p.add_argument("--policy", required=True, metavar="NAME", help="the policy's name")
    p.add_argument("--from", dest="start", metavar="DATE", help="first local date (default: today)")
    p.add_argument("--days", type=int, default=7, help="how many days (default: 7)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    cli_enforce.add_now(shutdown_sub, command)  # helper V: gronkoll shutdown now
