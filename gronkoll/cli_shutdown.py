"""The shutdown commands of the `gronkoll` command line: preview, overrides, schedule, run."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from gronkoll import cli_enforce
from gronkoll.errors import GronkollError, InputError
from gronkoll.settings import Settings, config_path, load_settings

Command = Callable[..., argparse.ArgumentParser]
log = logging.getLogger(__name__)


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


def _time(text: str, settings: Settings, option: str) -> datetime:
    """A local date (its midnight) or an ISO 8601 time, aware UTC."""
    from gronkoll.timeparse import parse_report_time

    ms = parse_report_time(text, settings.tz, option=option)
    return datetime.fromtimestamp(ms / 1000, UTC)


def cmd_override_add(args: argparse.Namespace) -> int:
    """Exempt a device or group from scheduled shutdowns for a while (audited)."""
    from gronkoll.overrides import add_override
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    now = datetime.now(UTC)
    start = _time(args.start, settings, "--from") if args.start else now
    end = _time(args.end, settings, "--to")
    with Runtime(settings) as runtime:
        added = add_override(
            runtime.state,
            settings,
            device=args.device,
            group=args.group,
            start=start,
            end=end,
            reason=args.reason,
            who=args.who or getpass.getuser(),
            actor="cli",
            now=now,
        )
    tz, when = settings.tz, "%Y-%m-%d %H:%M"
    _out(
        f"Override {added.id}: {added.target} stays on from {added.start.astimezone(tz):{when}} "
        f"to {added.end.astimezone(tz):{when}} ({settings.municipality.timezone})"
    )
    return 0


def cmd_override_list(args: argparse.Namespace) -> int:
    """List overrides not yet ended (--all: also past ones)."""
    from gronkoll.overrides import list_overrides
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    now = datetime.now(UTC)
    with Runtime(settings) as runtime:
        found = list_overrides(runtime.state, now=None if args.all else now)
    if args.format == "json":
        _out(json.dumps([o.as_json() for o in found], indent=2))
        return 0
    if not found:
        _out("No overrides.")
        return 0
    tz = settings.tz
    lines = [f"{'id':>4}  {'target':<24} {'from':<16} {'to':<16} {'who':<12} reason"]
    for o in found:
        lines.append(
            f"{o.id:>4}  {o.target:<24} {o.start.astimezone(tz):%Y-%m-%d %H:%M} "
            f"{o.end.astimezone(tz):%Y-%m-%d %H:%M} {o.who:<12} {o.reason}"
            + ("" if o.active(now) or o.start > now else "  (ended)")
        )
    _out("\n".join(lines))
    return 0


def cmd_override_remove(args: argparse.Namespace) -> int:
    """Remove an override by id (audited)."""
    from gronkoll.overrides import remove_override
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        removed = remove_override(runtime.state, args.id, actor="cli", now=datetime.now(UTC))
    _out(f"Override {removed.id} ({removed.target}) removed.")
    return 0


def _say(text: str) -> None:
    """A line for a service's log: flushed at once, as stdout may be a pipe."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set stop while inside (the main thread only)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _sig, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_schedule(args: argparse.Namespace) -> int:
    """Run the shutdown scheduler alone until SIGTERM or SIGINT (one active node at a time)."""
    service = importlib.import_module("gronkoll.schedules.service")
    settings = _settings(args)
    stop = threading.Event()
    with _stop_on_signals(stop):
        service.run_scheduler(settings, stop, out=_say)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the collector, the scheduler and the API in one process until SIGTERM or SIGINT."""
    from gronkoll.api_thread import ApiThread

    service = importlib.import_module("gronkoll.schedules.service")
    collector = importlib.import_module("gronkoll.collector.run")
    settings = _settings(args)
    stop = threading.Event()
    failed: list[str] = []
    api = ApiThread(settings)

    def schedule() -> None:
        try:
            service.run_scheduler(settings, stop, out=_say)
        except Exception as err:  # noqa: BLE001 (the scheduler thread's outermost loop)
            log.exception("the scheduler stopped")
            failed.append(str(err))
            os.kill(os.getpid(), signal.SIGTERM)  # stop the collector and the API too

    scheduler = threading.Thread(target=schedule, name="scheduler")
    collects = bool(collector.snmp_devices(settings)) or (
        collector.mqtt_pipeline(settings, _say) is not None
    )
    api.start()
    _say(f"Serving the Gronkoll API on http://{api.address}")
    try:
        with _stop_on_signals(stop):
            scheduler.start()
            if collects and not stop.is_set():  # the collector takes SIGTERM, SIGINT itself
                # a service's log wants the collector's own account, as `gronkoll collect` gives
                logging.getLogger("gronkoll.collector").setLevel(logging.INFO)
                collector.collect(settings, once=False, out=_say)
            else:
                stop.wait()
    finally:
        stop.set()
        api.stop()
        if scheduler.is_alive():
            scheduler.join()
    if failed:
        raise GronkollError(f"the scheduler stopped: {failed[0]}")
    _say("Stopped.")
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
    cli_enforce.add_now(shutdown_sub, command)  # gronkoll shutdown now

    override = sub.add_parser(
        "override",
        help="temporary exemptions from shutdowns",
        description="Temporary overrides: a device or group left on by scheduled shutdowns.",
    )
    override_sub = override.add_subparsers(dest="override", required=True, metavar="ACTION")
    p = command("add", cmd_override_add, override_sub)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="ID", help="the device to leave on")
    target.add_argument("--group", metavar="ID", help="the group to leave on")
    p.add_argument(
        "--from", dest="start", metavar="TIME", help="local date or ISO 8601 time (default: now)"
    )
    p.add_argument(
        "--to", dest="end", required=True, metavar="TIME", help="local date or ISO 8601 time"
    )
    p.add_argument("--reason", required=True, help="why, for the audit log")
    p.add_argument("--who", help="who asked for it (default: your user name)")
    p = command("list", cmd_override_list, override_sub)
    p.add_argument("--all", action="store_true", help="also overrides that have ended")
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    p = command("remove", cmd_override_remove, override_sub)
    p.add_argument("id", type=int, help="the override's id (see override list)")

    command("schedule", cmd_schedule)
    command("run", cmd_run)
