"""The `gronkoll` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

from gronkoll import __version__, cli_enforce, cli_shutdown
from gronkoll.errors import ConfigError, GronkollError
from gronkoll.power import BY as POWER_BY
from gronkoll.settings import (
    CONFIG_ENV,
    AuthProtocol,
    PrivProtocol,
    Settings,
    SnmpVersion,
    config_path,
    load_settings,
)
from gronkoll.statedb import ROLES
from gronkoll.stores.base import DIMENSIONS
from gronkoll.timeparse import BUCKETS, iso_local, parse_report_time

EXIT_FAILURE = 1
EXIT_CONFIG = 2
PAYLOAD_SHOWN = 80  # characters of a quarantined payload in `quarantine list`'s table


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- commands ---------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the config file and print a short summary."""
    from gronkoll.profiles import check_device_profiles, load_profiles

    settings = _settings(args)
    check_device_profiles(settings, load_profiles(settings))
    kinds = Counter(d.kind for d in settings.devices)
    em = settings.emissions
    lines = [
        f"{settings.source}: OK",
        f"  municipality: {settings.municipality.name} ({settings.municipality.timezone}, "
        f"{settings.municipality.currency}, language {settings.municipality.language})",
        f"  sites: {len(settings.sites)}, groups: {len(settings.groups)}, devices: "
        f"{len(settings.devices)}"
        + (f" ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})" if kinds else ""),
        f"  store: {settings.store.kind} in {settings.store_path}",
        f"  location-based factor: {em.location_based.gco2e_per_kwh:g} g CO2e/kWh "
        f"({em.location_based.source})",
        f"  market-based factor: {em.market_based.gco2e_per_kwh:g} g CO2e/kWh "
        f"({em.market_based.source})",
    ]
    if em.hourly is not None:
        from gronkoll.carbon import load_hourly

        series = load_hourly(
            settings.resolve(em.hourly.path), em.hourly.source, em.hourly.applies_to
        )
        lines.append(f"  hourly factors: {len(series.by_hour)} hours from {series.path}")
    lines.append(f"  API: http://{settings.api.host}:{settings.api.port}")
    if settings.store.kind == "influxdb":
        return _check_influxdb(settings, lines)
    _out("\n".join(lines))
    return 0


def _check_influxdb(settings: Settings, lines: list[str]) -> int:
    """Add whether the InfluxDB store answers (wrong token, unknown database, unreachable)."""
    from gronkoll.settings import InfluxdbStore
    from gronkoll.stores.influxdb import check_store

    assert isinstance(settings.store, InfluxdbStore)  # noqa: S101
    lines.append(f"  spool: {settings.spool_path} (at most {settings.store.spool_max_mb:g} MB)")
    try:
        lines.append(f"  store: {check_store(settings.store)}")
    except GronkollError as err:
        lines.append(f"  store: FAILED: {err}")
        _out("\n".join(lines))
        return EXIT_FAILURE
    _out("\n".join(lines))
    return 0


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


def cmd_apikey_create(args: argparse.Namespace) -> int:
    """Create an API key and print it once."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        key = runtime.state.create_api_key(args.name, args.role)
    _out(key)
    sys.stderr.write(
        f"API key {args.name!r} ({args.role}) created. It is shown only this once and stored "
        "hashed: keep it somewhere safe.\n"
    )
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    """List API keys (names, roles, prefixes; never the keys)."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        keys = runtime.state.list_api_keys()
    if not keys:
        _out("No API keys. Create one with: gronkoll apikey create --name NAME --role viewer")
    for k in keys:
        used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never"
        state = "revoked" if k.revoked else "active"
        _out(f"{k.name}\t{k.role}\t{k.prefix}...\t{state}\tlast used {used}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    """Revoke an API key by name."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        if not runtime.state.revoke_api_key(args.name):
            raise GronkollError(f"no API key named {args.name!r}")
    _out(f"API key {args.name!r} revoked.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    from gronkoll.server import serve

    serve(_settings(args), host=args.host, port=args.port)
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


def cmd_collect(args: argparse.Namespace) -> int:
    """Poll SNMP devices and take MQTT messages until SIGTERM or SIGINT (or once: --once)."""
    settings = _settings(args)
    run = importlib.import_module("gronkoll.collector.run")
    logger = logging.getLogger("gronkoll.collector")
    before = logger.level
    if not args.verbose:
        # A service's log wants the collector's own account (start, first round, failures,
        # recoveries); with --once the line printed per device says it all.
        logger.setLevel(logging.ERROR if args.once else logging.INFO)
    try:
        result: int = run.collect(settings, once=args.once, out=_out)
    finally:
        logger.setLevel(before)
    return result


def cmd_devices(args: argparse.Namespace) -> int:
    """List every device with its status, profile and latest readings."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    inventory = importlib.import_module("gronkoll.collector.inventory")
    with Runtime(settings) as runtime:
        items = inventory.entries(
            settings,
            runtime.state.device_status(),
            inventory.latest_readings(runtime.store),
            _now_ms(),
        )
    sys.stdout.write(inventory.render(items, args.format, settings.tz))
    return 0


def cmd_snmp_probe(args: argparse.Namespace) -> int:
    """Detect a device's profile and show what Gronkoll would read from it."""
    settings = None
    path = config_path(getattr(args, "config", None))
    if path.is_file():  # only for collector.profiles_dir; a probe needs no config
        settings = load_settings(path)
    probe = importlib.import_module("gronkoll.collector.probe")
    try:
        target = probe.target_from_args(args, settings)
    except ValueError as err:
        sys.stderr.write(f"gronkoll: snmp probe: {err}\n")
        return EXIT_CONFIG
    result: int = probe.run(target, settings, out=_out)
    return result


def cmd_mqtt_replay(args: argparse.Namespace) -> int:
    """Feed recorded MQTT messages through the live pipeline, energy engine and store."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    replay = importlib.import_module("gronkoll.collector.replay")
    path = Path(args.file)
    logger = logging.getLogger("gronkoll.collector")
    before = logger.level
    if not args.verbose:  # the summary lists every quarantined message and ignored topic
        logger.setLevel(logging.ERROR)
    try:
        with Runtime(settings) as runtime:
            summary = replay.replay_file(path, runtime)
    finally:
        logger.setLevel(before)
    _out(replay.format_summary(path, summary))
    return 0 if summary.messages else EXIT_FAILURE


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    """List quarantined MQTT messages, newest first, with the reason for each."""
    import json

    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        rows = runtime.state.quarantined(limit=args.limit, device=args.device)
    if args.format == "json":
        items = [
            {
                "time": iso_local(round(r.received_at.timestamp() * 1000), settings.tz),
                "device": r.device_id,
                "topic": r.topic,
                "reason": r.reason,
                "payload": r.payload,
                "payload_bytes": r.payload_bytes,
            }
            for r in rows
        ]
        _out(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        _out("No quarantined messages.")
        return 0
    for r in rows:
        payload = r.payload.replace("\n", " ")
        if len(payload) > PAYLOAD_SHOWN:
            payload = payload[: PAYLOAD_SHOWN - 3] + "..."
        _out(
            f"{iso_local(round(r.received_at.timestamp() * 1000), settings.tz)}  "
            f"{r.device_id or '-'}  {r.topic}  {r.reason}  payload: {payload}"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a fictional municipality, simulate readings, report and serve."""
    demo = importlib.import_module("gronkoll.demo")
    result: int = demo.main(args)
    return result


def cmd_agent(args: argparse.Namespace) -> int:
    """Run the PC agent (reports this computer's state, obeys signed shutdown commands)."""
    from gronkoll.agent.config import default_postpone_file, load_agent_settings

    config = getattr(args, "config", None)
    if args.action == "postpone":
        # Run by the logged-in user, who may not read agent.yaml (it holds the site's key).
        path = Path(args.postpone_file) if args.postpone_file else default_postpone_file()
        if args.postpone_file is None and config and Path(config).is_file():
            try:
                path = load_agent_settings(config).postpone_path()
            except ConfigError:
                pass
        path.touch()
        _out(f"Avstängningen skjuts upp en gång. The shutdown is postponed once ({path}).")
        return 0
    if not config:
        raise ConfigError("gronkoll agent: give the agent's config file with -c agent.yaml")
    settings = load_agent_settings(config)
    runner = importlib.import_module("gronkoll.agent.runner")
    logging.getLogger("gronkoll").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    result: int = runner.run_agent(settings)
    return result


# -- parsing ----------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(getattr(args, "config", None)))


def _now_ms() -> int:
    return round(time.time() * 1000)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help=f"config file (default: ${CONFIG_ENV}, else ./gronkoll.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="gronkoll",
        description="Green IT energy monitoring for municipalities.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gronkoll {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        func: Callable[[argparse.Namespace], int],
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name, parents=[common], help=func.__doc__, description=func.__doc__
        )
        p.set_defaults(func=func)
        return p

    def group(
        name: str, text: str, description: str
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command with actions of its own (gronkoll mqtt replay, gronkoll quarantine list)."""
        parser = sub.add_parser(name, help=text, description=description)
        return parser.add_subparsers(dest=name, required=True, metavar="ACTION")

    command("check-config", cmd_check_config)

    p = command("import", cmd_import)
    p.add_argument("file", metavar="FILE.csv", help="CSV with the header time,device,field,value")
    p.add_argument(
        "--skip-bad", action="store_true", help="import the good rows even if some are bad"
    )

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

    keys = sub.add_parser(
        "apikey", help="API keys", description="Create, list and revoke API keys."
    )
    keys_sub = keys.add_subparsers(dest="apikey", required=True, metavar="ACTION")
    p = command("create", cmd_apikey_create, keys_sub)
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer")
    command("list", cmd_apikey_list, keys_sub)
    p = command("revoke", cmd_apikey_revoke, keys_sub)
    p.add_argument("--name", required=True)

    p = command("serve", cmd_serve)
    p.add_argument("--host", help="address to bind (default: api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: api.port, 8000)")

    p = command("collect", cmd_collect)
    p.add_argument(
        "--once",
        action="store_true",
        help="poll every SNMP device once, take what the MQTT broker holds for the session "
        "(with an mqtt section), store and exit",
    )

    p = command("devices", cmd_devices)
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")

    snmp = sub.add_parser("snmp", help="SNMP tools", description="SNMP tools.")
    snmp_sub = snmp.add_subparsers(dest="snmp", required=True, metavar="ACTION")
    p = command("probe", cmd_snmp_probe, snmp_sub)
    p.add_argument("host", metavar="HOST[:PORT]", help="the agent (default port 161)")
    p.add_argument(
        "--version",
        dest="snmp_version",
        choices=get_args(SnmpVersion),
        help="SNMP version (default: 3 with --v3-user, else 2c)",
    )
    p.add_argument("--community", help="v1/v2c community (default: public); never printed")
    p.add_argument("--v3-user", metavar="U", help="SNMPv3 user")
    p.add_argument(
        "--auth-protocol",
        metavar="P",
        choices=get_args(AuthProtocol),
        help=", ".join(get_args(AuthProtocol)),
    )
    p.add_argument("--auth-key", metavar="K", help="v3 auth key (8+ characters); never printed")
    p.add_argument(
        "--priv-protocol",
        metavar="P",
        choices=get_args(PrivProtocol),
        help=", ".join(get_args(PrivProtocol)),
    )
    p.add_argument("--priv-key", metavar="K", help="v3 priv key (8+ characters); never printed")
    p.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="seconds per try (default: 2)"
    )

    p = command("replay", cmd_mqtt_replay, group("mqtt", "MQTT tools", "MQTT tools."))
    p.add_argument(
        "file",
        metavar="FILE.jsonl",
        help='one {"topic": ..., "payload": ..., "t": ISO 8601} object per line',
    )

    quarantine_sub = group(
        "quarantine",
        "quarantined MQTT messages",
        "Quarantined MQTT messages: payloads and values that could not be used.",
    )
    p = command("list", cmd_quarantine_list, quarantine_sub)
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    p.add_argument("--device", help="only this device")
    p.add_argument("--limit", type=int, default=50, help="newest N entries (default: 50)")

    cli_shutdown.add_commands(sub, command)
    cli_enforce.add_audit(sub, command)
    cli_enforce.add_report(report_sub, command)
    p = command("agent", cmd_agent)
    p.add_argument(
        "action",
        nargs="?",
        choices=("run", "postpone"),
        default="run",
        help="run the agent (default, needs -c agent.yaml), or postpone a pending shutdown once",
    )
    p.add_argument("--postpone-file", metavar="PATH", help="postpone: the agent's postpone_file")
    spool = sub.add_parser(
        "spool", help="the InfluxDB store's spool", description="The InfluxDB store's spool."
    )
    spool_sub = spool.add_subparsers(dest="spool", required=True, metavar="ACTION")
    p = command("status", cmd_spool_status, spool_sub)
    p.add_argument("--format", choices=("table", "json"), default="table", help="default: table")

    p = command("demo", cmd_demo)
    p.add_argument("--no-serve", action="store_true", help="print the summary and exit")
    p.add_argument("--dir", help="folder to build the demo in (default: a new temporary folder)")
    p.add_argument("--days", type=int, default=90, help="days to simulate (default: 90)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--end", help="local date the simulation ends at, exclusive (default: today)")
    p.add_argument("--host", help="address to serve on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to serve on (default: 8000)")
    p.add_argument(
        "--influxdb",
        metavar="URL",
        help="store the demo in InfluxDB 1.x at URL (database gronkoll) instead of SQLite",
    )
    p.add_argument("--influxdb-database", help=argparse.SUPPRESS)  # tests: a database each
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors meant for the user print as one message, not a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
        return result
    except ConfigError as err:
        sys.stderr.write(f"gronkoll: {err}\n")
        return EXIT_CONFIG
    except GronkollError as err:
        sys.stderr.write(f"gronkoll: {err}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
