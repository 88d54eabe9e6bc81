"""Finds which profile fits a device: its sysObjectID first, then probing for known objects.

The longest sysObjectID prefix (whole arcs) among all profiles wins. A generic sysObjectID
(one that names an agent, not a product) or one no profile claims leads to probing: each
profile's probe objects are walked, profiles in order of match.probe_order then id, and the
first profile with a probe that answers is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.errors import DeviceError, DeviceUnreachable, SnmpAuthError
from gronkoll.profiles import Probe, Profile, ProfileSet

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"

#: sysObjectID prefixes that name an SNMP agent rather than a product: what answers there
#: says nothing about the hardware. net-snmp's netSnmpAgentOIDs (NET-SNMP-MIB
#: netSnmpEnumerations 2; NET-SNMP-TC lists linux(10), freebsd(8), win32(13), ...).
GENERIC_SYS_OBJECT_IDS: dict[str, str] = {
    "1.3.6.1.4.1.8072.3.2": "net-snmp's generic one",
}

# Probes walk a column or a small group; this keeps each GETBULK small.
_PROBE_REPETITIONS = 5


@dataclass(frozen=True, slots=True)
class Detection:
    """The profile chosen for a device (None: none fits), and why."""

    profile: str | None
    reason: str
    sys_object_id: str | None
    sys_descr: str | None


async def detect(client: SnmpClient, target: SnmpTarget, profiles: ProfileSet) -> Detection:
    """Choose the device's profile; raises only when the device cannot be talked to."""
    try:
        system = await client.get(target, [SYS_OBJECT_ID, SYS_DESCR])
    except (DeviceUnreachable, SnmpAuthError):
        raise
    except DeviceError as err:
        return Detection(None, f"no profile matches: reading sysObjectID failed: {err}", None, None)
    raw_oid, raw_descr = system.get(SYS_OBJECT_ID), system.get(SYS_DESCR)
    sys_object_id = raw_oid if isinstance(raw_oid, str) and raw_oid else None
    sys_descr = _text(raw_descr)

    if sys_object_id is None:
        why = "the device has no sysObjectID"
    else:
        generic = _generic(sys_object_id)
        if generic is None:
            found = _by_prefix(sys_object_id, profiles)
            if found is not None:
                profile, prefix = found
                reason = f"sysObjectID {sys_object_id} matches {profile.id} (prefix {prefix})"
                return Detection(profile.id, reason, sys_object_id, sys_descr)
            why = f"sysObjectID {sys_object_id} matches no profile"
        else:
            why = f"sysObjectID {sys_object_id} is {generic}"

    answered = await _probe(client, target, profiles)
    if answered is None:
        tried = "; no probe answered" if _probing_order(profiles) else ""
        return Detection(None, f"no profile matches: {why}{tried}", sys_object_id, sys_descr)
    profile, probe = answered
    reason = f"{why}; {probe.mib} {probe.object} answered: {profile.id}"
    return Detection(profile.id, reason, sys_object_id, sys_descr)


def _arcs(oid: str) -> tuple[str, ...]:
    return tuple(oid.strip().lstrip(".").split("."))


def _is_prefix(prefix: str, oid: str) -> bool:
    head, arcs = _arcs(prefix), _arcs(oid)
    return arcs[: len(head)] == head


def _generic(sys_object_id: str) -> str | None:
    for prefix, what in GENERIC_SYS_OBJECT_IDS.items():
        if _is_prefix(prefix, sys_object_id):
            return what
    return None


def _by_prefix(sys_object_id: str, profiles: ProfileSet) -> tuple[Profile, str] | None:
    """The profile with the longest sysObjectID prefix of this one (ties: by id)."""
    best: tuple[int, str, Profile, str] | None = None
    for profile in profiles.profiles.values():
        for prefix in profile.match.sys_object_id:
            if not _is_prefix(prefix, sys_object_id):
                continue
            key = (len(_arcs(prefix)), profile.id)
            if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
                best = (key[0], key[1], profile, prefix)
    return None if best is None else (best[2], best[3])


def _probing_order(profiles: ProfileSet) -> list[Profile]:
    with_probes = [p for p in profiles.profiles.values() if p.match.probe]
    return sorted(with_probes, key=lambda p: (p.match.probe_order, p.id))


async def _probe(
    client: SnmpClient, target: SnmpTarget, profiles: ProfileSet
) -> tuple[Profile, Probe] | None:
    """The first profile (in probing order) with an object the device answers."""
    for profile in _probing_order(profiles):
        for probe in profile.match.probe:
            try:
                found = await client.walk(target, probe.oid, max_repetitions=_PROBE_REPETITIONS)
            except (DeviceUnreachable, SnmpAuthError):
                raise
            except DeviceError:
                continue  # an agent that errs on this subtree does not have it
            if found:
                return profile, probe
    return None


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None
