"""`gronkoll check-config`: validate the config file and summarise what it holds."""

from __future__ import annotations

import argparse
from collections import Counter

from gronkoll.cli_common import EXIT_FAILURE, Command, SubParsers, _out, _settings
from gronkoll.errors import GronkollError
from gronkoll.settings import Settings
from gronkoll.shutdown_summary import shutdown_lines


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
    lines += shutdown_lines(settings)
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


def add_commands(sub: SubParsers, command: Command) -> None:
    """Add check-config to the top-level command parser."""
    command("check-config", cmd_check_config)
