"""Which computers a shutdown is for: a policy's groups, sites and devices, less exemptions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gronkoll.errors import InputError
from gronkoll.settings import Device, Settings

#: The device kind a shutdown switches off.
COMPUTER_KIND = "pc"


@dataclass(frozen=True, slots=True)
class Targets:
    """The computers to shut down, and those the selection names but must leave on (why)."""

    devices: list[Device]
    exempt: Mapping[str, str]  # device id -> why it stays on

    @property
    def all_ids(self) -> list[str]:
        """Every computer the selection names, exempt or not."""
        return sorted({d.id for d in self.devices} | set(self.exempt))


def _computers(settings: Settings) -> list[Device]:
    return [d for d in settings.devices if d.kind == COMPUTER_KIND]


def policy_targets(
    settings: Settings, policy: object, overridden: Mapping[str, str] | None = None
) -> Targets:
    """The computers a policy targets; exempt devices and groups, and devices under an
    active override (device id -> reason), are set apart."""
    groups = set(getattr(policy, "groups", ()) or ())
    sites = set(getattr(policy, "sites", ()) or ())
    named = set(getattr(policy, "devices", ()) or ())
    exempt_devices = set(getattr(policy, "exempt_devices", ()) or ())
    exempt_groups = set(getattr(policy, "exempt_groups", ()) or ())
    overridden = overridden or {}
    chosen: list[Device] = []
    exempt: dict[str, str] = {}
    for d in _computers(settings):
        if not (d.id in named or d.site in sites or (d.group is not None and d.group in groups)):
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


def selection_targets(
    settings: Settings,
    *,
    group: str | None = None,
    site: str | None = None,
    device: str | None = None,
) -> Targets:
    """The computers of one group, site or device (``gronkoll shutdown now``)."""
    if device is not None:
        found = settings.device(device)
        if found is None:
            raise InputError(f"--device {device!r}: no such device in the configuration")
        if found.kind != COMPUTER_KIND:
            raise InputError(
                f"--device {device!r}: is a {found.kind}; only computers (kind pc) are shut down"
            )
        return Targets([found], {})
    if group is not None and group not in {g.id for g in settings.groups}:
        raise InputError(f"--group {group!r}: no such group in the configuration")
    if site is not None and site not in {s.id for s in settings.sites}:
        raise InputError(f"--site {site!r}: no such site in the configuration")
    chosen = [
        d
        for d in _computers(settings)
        if (group is not None and d.group == group) or (site is not None and d.site == site)
    ]
    return Targets(chosen, {})
