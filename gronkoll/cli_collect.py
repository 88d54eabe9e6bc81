"""The collector's `gronkoll` commands: collect, devices, snmp probe, mqtt replay, quarantine."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import get_args

from gronkoll.cli_common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    Command,
    Group,
    SubParsers,
    _now_ms,
    _out,
    _settings,
)
from gronkoll.settings import AuthProtocol, PrivProtocol, SnmpVersion, config_path, load_settings
from gronkoll.timeparse import iso_local

PAYLOAD_SHOWN = 80  # characters of a quarantined payload in `quarantine list`'s table


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


def add_commands(sub: SubParsers, command: Command, group: Group) -> None:
    """Add collect, devices, snmp probe, mqtt replay and quarantine list to the parser."""
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
    for kind, protocols in (("auth", get_args(AuthProtocol)), ("priv", get_args(PrivProtocol))):
        p.add_argument(
            f"--{kind}-protocol", metavar="P", choices=protocols, help=", ".join(protocols)
        )
        p.add_argument(
            f"--{kind}-key", metavar="K", help=f"v3 {kind} key (8+ characters); never printed"
        )
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
