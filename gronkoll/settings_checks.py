"""Config problems pydantic cannot see: references between sections and duplicate ids."""

from __future__ import annotations

from typing import Any

from gronkoll.policies import shutdown_problems
from gronkoll.settings_devices import DEFAULT_POWER_PROFILES
from gronkoll.settings_model import Settings


def cross_check(settings: Settings) -> list[str]:
    """Reference and uniqueness problems pydantic cannot see, as 'key: problem' lines."""
    problems: list[str] = []

    def unique(items: list[Any], section: str) -> set[str]:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                problems.append(f"{section}[{i}].id: duplicate id {item.id!r}")
            seen.add(item.id)
        return seen

    sites = unique(settings.sites, "sites")
    groups = unique(settings.groups, "groups")
    unique(settings.devices, "devices")
    profiles = set(settings.power_profiles) | set(DEFAULT_POWER_PROFILES)
    for i, dev in enumerate(settings.devices):
        if dev.site not in sites:
            problems.append(
                f"devices[{i}].site: unknown site {dev.site!r} (known: {', '.join(sorted(sites))})"
            )
        if dev.group is not None and dev.group not in groups:
            known = ", ".join(sorted(groups)) or "none defined under groups"
            problems.append(f"devices[{i}].group: unknown group {dev.group!r} (known: {known})")
        parent = settings.device(dev.metered_by) if dev.metered_by is not None else None
        if dev.metered_by is not None and (parent is None or parent.kind != "meter"):
            meters = ", ".join(d.id for d in settings.devices if d.kind == "meter") or "none"
            problems.append(
                f"devices[{i}].metered_by: {dev.metered_by!r} is not a device of kind meter "
                f"(meters: {meters})"
            )
        elif parent is not None and parent.site != dev.site:
            problems.append(
                f"devices[{i}].metered_by: meter {parent.id!r} is on site {parent.site!r}, "
                f"not {dev.site!r}"
            )
        if dev.power_profile is not None and dev.power_profile not in profiles:
            problems.append(
                f"devices[{i}].power_profile: unknown power profile {dev.power_profile!r} "
                f"(known: {', '.join(sorted(profiles))})"
            )
    for i, group in enumerate(settings.groups):
        if group.site is not None and group.site not in sites:
            problems.append(f"groups[{i}].site: unknown site {group.site!r}")
    problems += shutdown_problems(settings)
    hourly = settings.emissions.hourly
    if hourly is not None and not settings.resolve(hourly.path).is_file():
        problems.append(f"emissions.hourly.path: no such file {settings.resolve(hourly.path)}")
    return problems
