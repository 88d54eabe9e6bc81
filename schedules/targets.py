"""Which computers `gronkoll shutdown now` is for: one group, site or device.

A policy's computers come from gronkoll.policies.policy_targets, the one place that decides
whom a policy targets (the CLI preview and the settings checks use it too).
"""

from __future__ import annotations

from gronkoll.errors import InputError
from gronkoll.policies import SHUTDOWN_KIND, Targets
from gronkoll.settings import Settings


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
        if found.kind != SHUTDOWN_KIND:
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
        for d in settings.devices
        if d.kind == SHUTDOWN_KIND
        and ((group is not None and d.group == group) or (site is not None and d.site == site))
    ]
    return Targets(chosen, {})
