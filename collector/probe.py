"""`gronkoll snmp probe`: which profile fits an agent, and what Gronkoll would read from it.

It needs no config file; with one, the site's own profiles (collector.profiles_dir) count too.
The community and keys come from the command line and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from gronkoll.collector.detect import Detection, detect
from gronkoll.collector.readout import Readout, read_device
from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.fields import STATE_CODES, unit_of
from gronkoll.profiles import ProfileSet, load_profiles
from gronkoll.settings import CollectorSettings, Settings, SnmpSettings

EXIT_NO_PROFILE = 1
PROBE_ID = "probe"  # the name errors give the agent


@dataclass(frozen=True, slots=True)
class Probe:
    """What an agent said about itself, and what its profile reads."""

    detection: Detection
    readout: Readout | None


def split_host(text: str) -> tuple[str, int]:
    """HOST[:PORT], [IPv6]:PORT or a bare IPv6 address, as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "161"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, "161"
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST[:PORT] (e.g. 10.0.0.5:161)")
    return host, int(port)


def target_from_args(args: argparse.Namespace, settings: Settings | None) -> SnmpTarget:
    """The agent to probe, checked as strictly as a device's snmp block; ValueError if bad."""
    host, port = split_host(args.host)
    version = args.snmp_version or ("3" if args.v3_user else "2c")
    block = {
        "host": host,
        "port": port,
        "version": version,
        "community": (args.community or "public") if version != "3" else None,
        "user": args.v3_user,
        "auth_protocol": args.auth_protocol,
        "auth_key": args.auth_key,
        "priv_protocol": args.priv_protocol,
        "priv_key": args.priv_key,
        "timeout_s": args.timeout,
    }
    try:
        snmp = SnmpSettings.model_validate({k: v for k, v in block.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{where}: {message}" if where else message) from None
    collector = settings.collector if settings is not None else CollectorSettings()
    return SnmpTarget.from_settings(PROBE_ID, snmp, collector)


async def probe(client: SnmpClient, target: SnmpTarget, profiles: ProfileSet) -> Probe:
    """Detect the agent's profile and, when one matches, read it once."""
    found = await detect(client, target, profiles)
    profile = profiles.get(found.profile) if found.profile else None
    readout = await read_device(client, target, profile) if profile is not None else None
    return Probe(detection=found, readout=readout)


def describe(target: SnmpTarget, result: Probe) -> tuple[list[str], bool]:
    """The lines to print, and whether a profile matched."""
    found = result.detection
    lines = [
        f"{target.address} (SNMP v{target.version})",
        f"  sysObjectID  {found.sys_object_id or '-'}",
        f"  sysDescr     {found.sys_descr or '-'}",
    ]
    if result.readout is None:
        why = found.reason.removeprefix("no profile matches: ")
        lines.append(f"No profile matches {target.address}: {why}.")
        lines.append(
            "Gronkoll would read nothing from it; add a profile for it in "
            "collector.profiles_dir (docs/snmp.md)."
        )
        return lines, False
    lines.append(f"  profile      {found.profile} ({found.reason})")
    values = list(result.readout.values)
    values.append(("reachable", 1.0))
    width = max(len(f) for f, _ in values)
    lines.append("Gronkoll would read:")
    for field, value in values:
        unit = unit_of(field)
        lines.append(f"  {field:<{width}}  {value:.10g}{' ' + unit if unit else ''}")
    present = dict(values).get("user_present")
    if present is not None:
        state = "on" if present else "idle"
        lines.append(
            f"  {'state':<{width}}  {state} (code {STATE_CODES[state]}), for a device of kind pc"
        )
    for missing in result.readout.missing:
        lines.append(f"Missing: {missing}")
    for problem in result.readout.problems:
        lines.append(f"Problem: {problem}")
    return lines, True


def run(target: SnmpTarget, settings: Settings | None, *, out: Callable[[str], None]) -> int:
    """Probe the agent and print the outcome; 1 when no profile matches."""
    profiles = load_profiles(settings)

    async def main() -> Probe:
        async with SnmpClient() as client:
            return await probe(client, target, profiles)

    lines, matched = describe(target, asyncio.run(main()))
    out("\n".join(lines))
    return 0 if matched else EXIT_NO_PROFILE
