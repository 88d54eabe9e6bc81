"""Shutdown policies against the device list: whom each targets, and what the config got wrong.

A policy targets the devices of kind ``pc`` in its groups, sites and devices, less its
exemptions. Two policies **overlap** when one device is targeted by both and their shutdown
cron expressions can fire on the same local date (ignoring the school calendar, which only
removes dates): a device then gets two shutdowns a day from two sources, which is a
configuration mistake, so it is refused at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from gronkoll.cron import parse_cron

if TYPE_CHECKING:
    from gronkoll.settings import Device, Policy, Settings

SHUTDOWN_KIND = "pc"
# Dates, weekdays and months repeat in a 28-year cycle between 1901 and 2099: a date matching
# two expressions exists at all if and only if one exists in these years.
_CYCLE_START = date(2024, 1, 1)
_CYCLE_DAYS = (date(2052, 1, 1) - _CYCLE_START).days


@dataclass(frozen=True, slots=True)
class Targets:
    """The computers to shut down, and those the selection names but must leave on (why)."""

    devices: list[Device]
    exempt: Mapping[str, str]  # device id -> why it stays on


def policy_targets(
    settings: Settings, policy: Policy, overridden: Mapping[str, str] | None = None
) -> Targets:
    """The computers (devices of kind pc) a policy shuts down, in config order; exempt devices
    and groups, and devices under an active override (device id -> reason), are set apart."""
    groups, sites, named = set(policy.groups), set(policy.sites), set(policy.devices)
    exempt_devices, exempt_groups = set(policy.exempt_devices), set(policy.exempt_groups)
    overridden = overridden or {}
    chosen: list[Device] = []
    exempt: dict[str, str] = {}
    for d in settings.devices:
        if d.kind != SHUTDOWN_KIND or not (
            d.id in named or d.site in sites or (d.group is not None and d.group in groups)
        ):
            continue
        if d.id in exempt_devices:
            exempt[d.id] = "exempt device"
        elif d.group is not None and d.group in exempt_groups:
            exempt[d.id] = f"exempt group {d.group}"
        elif d.id in overridden:
            exempt[d.id] = f"override: {overridden[d.id]}"
        else:
            chosen.append(d)
    return Targets(chosen, exempt)


@lru_cache(maxsize=256)
def _firing_days(expr: str) -> frozenset[int]:
    """Day numbers (from _CYCLE_START) on which a cron expression fires at least once."""
    trigger = parse_cron(expr)
    fields = [
        f for f in trigger.fields if f.name in ("year", "month", "day", "week", "day_of_week")
    ]
    days = set()
    for n in range(_CYCLE_DAYS):
        at = datetime.combine(_CYCLE_START + timedelta(days=n), datetime.min.time(), UTC)
        if all(f.get_next_value(at) == f.get_value(at) for f in fields):
            days.add(n)
    return frozenset(days)


def _common_day(a: str, b: str) -> date | None:
    """The first date in the cycle both expressions fire on, or None."""
    common = _firing_days(a) & _firing_days(b)
    return _CYCLE_START + timedelta(days=min(common)) if common else None


def _unknown(names: Iterable[str], known: set[str], key: str, what: str) -> list[str]:
    listed = ", ".join(sorted(known)) or f"no {what}s defined"
    return [f"{key}: unknown {what} {n!r} (known: {listed})" for n in names if n not in known]


def shutdown_problems(settings: Settings) -> list[str]:
    """Problems of the shutdown section as 'key: problem' lines (empty when it is fine)."""
    section = settings.shutdown
    problems: list[str] = []
    sites = {s.id for s in settings.sites}
    groups = {g.id for g in settings.groups}
    devices = {d.id for d in settings.devices}
    for site in section.signing_keys:
        if site not in sites:
            problems.append(f"shutdown.signing_keys.{site}: unknown site {site!r}")
    seen: dict[str, int] = {}
    for i, policy in enumerate(section.policies):
        key = f"shutdown.policies[{i}]"
        if policy.name in seen:
            problems.append(f"{key}.name: duplicate policy name {policy.name!r}")
        seen.setdefault(policy.name, i)
        problems += _unknown(policy.groups, groups, f"{key}.groups", "group")
        problems += _unknown(policy.exempt_groups, groups, f"{key}.exempt_groups", "group")
        problems += _unknown(policy.sites, sites, f"{key}.sites", "site")
        problems += _unknown(policy.devices, devices, f"{key}.devices", "device")
        problems += _unknown(policy.exempt_devices, devices, f"{key}.exempt_devices", "device")
        for name in policy.devices:
            device = settings.device(name)
            if device is not None and device.kind != SHUTDOWN_KIND:
                problems.append(
                    f"{key}.devices: {name!r} is a {device.kind}; only devices of kind "
                    f"{SHUTDOWN_KIND} are shut down"
                )
        missing = sorted(
            {d.site for d in policy_targets(settings, policy).devices} - set(section.signing_keys)
        )
        for site in missing:
            problems.append(
                f"shutdown.signing_keys: no key for site {site!r}, where policy "
                f"{policy.name!r} shuts computers down"
            )
    group_site = {g.id: g.site for g in settings.groups if g.site is not None}
    for j, dev in enumerate(settings.devices):
        home = group_site.get(dev.group or "")
        if home is not None and dev.site != home:
            problems.append(
                f"devices[{j}].site: {dev.id!r} is in group {dev.group!r} of site {home!r} "
                f"but stands on site {dev.site!r}"
            )
    return problems + _overlaps(settings)


def _overlaps(settings: Settings) -> list[str]:
    """One line per pair of policies that can shut one device down twice on a local date."""
    policies = [(p.name, p.shutdown) for p in settings.shutdown.policies if p.shutdown]
    by_device: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(policies):
        policy = settings.shutdown.policy(name)
        for target in policy_targets(settings, policy).devices if policy else ():
            by_device.setdefault(target.id, []).append(i)
    pairs: dict[tuple[int, int], list[str]] = {}
    for device_id, indexes in by_device.items():
        for n, a in enumerate(indexes):
            for b in indexes[n + 1 :]:
                pairs.setdefault((a, b), []).append(device_id)
    problems = []
    index = {p.name: i for i, p in enumerate(settings.shutdown.policies)}
    for (a, b), shared in sorted(pairs.items()):
        (first, first_cron), (second, second_cron) = policies[a], policies[b]
        day = _common_day(first_cron, second_cron)
        if day is None:
            continue
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        problems.append(
            f"shutdown.policies[{index[second]}]: policy {second!r} overlaps policy "
            f"{first!r}: both shut down {', '.join(shared[:3])}{more} and can fire on the "
            f"same day (e.g. {day:%A} {day}); give them different days or exempt the devices"
        )
    return problems
