"""Power now: the latest power in W per device, site or kind, from the store's newest readings.

A device's power is its newest ``power_w`` reading; a device without one (a PC read over SNMP)
uses its newest ``state`` times its power profile, as the energy engine does. A reading older
than ``max(3 × the device's poll interval, energy.max_gap_s)`` is stale: the energy engine would
assume nothing across such a gap either, so the device is left out of the sums and named in a
note instead of counting an old value as if it were now. By site, a device another meter
measures (``metered_by``) is left out, as in the energy rollups, so nothing is counted twice.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gronkoll.errors import InputError
from gronkoll.fields import STATES
from gronkoll.settings import Device, Settings
from gronkoll.stores.base import TimeSeriesStore

BY: tuple[str, ...] = ("device", "site", "kind")
FORMATS = ("table", "csv", "json")
CSV_HEADER = ("key", "power_w", "time")
_LISTED = 10  # device ids named in a note before "and N more"


@dataclass(frozen=True, slots=True)
class PowerRow:
    """The summed power of one key, the newest reading time in the sum, and how many devices."""

    key: str
    power_w: float
    time_ms: int
    devices: int


@dataclass(frozen=True, slots=True)
class PowerReport:
    """Power per key now, and which devices were left out and why."""

    at_ms: int
    by: str
    timezone: str
    rows: list[PowerRow]
    stale: list[tuple[str, int]]  # (device, newest reading time) of devices left out
    from_state: list[str]  # devices whose power is their state times their power profile
    no_reading: list[str]  # devices with neither a power nor a state reading

    @property
    def total_w(self) -> float:
        """The sum over all rows."""
        return sum(r.power_w for r in self.rows)


def max_age_s(settings: Settings, device: Device) -> float:
    """How old a device's reading may be and still count as now."""
    interval = settings.collector.interval_s
    if device.snmp is not None and device.snmp.interval_s is not None:
        interval = device.snmp.interval_s
    return max(3 * interval, settings.energy.max_gap_s)


def _key(device: Device, by: str) -> str | None:
    if by == "device":
        return device.id
    if by == "kind":
        return device.kind
    return None if device.metered_by else device.site


def _state_watts(settings: Settings, device: Device, code: float) -> float | None:
    """The power profile's W for a stored state code, or None when it has no figure."""
    profile = settings.power_profile(device)
    index = int(code)
    if profile is None or not 0 <= index < len(STATES):
        return None
    return profile.watts(STATES[index])


def power_report(settings: Settings, store: TimeSeriesStore, *, by: str, at_ms: int) -> PowerReport:
    """The latest power per key at at_ms (ms since the epoch)."""
    if by not in BY:
        raise InputError(f"unknown grouping {by!r} (expected one of {', '.join(BY)})")
    power = store.latest("power_w")
    states = store.latest("state")
    sums: dict[str, list[float]] = {}  # key -> [W, newest ms, devices]
    stale: list[tuple[str, int]] = []
    from_state: list[str] = []
    no_reading: list[str] = []
    for device in settings.devices:
        key = _key(device, by)
        if key is None:
            continue
        oldest_ms = at_ms - max_age_s(settings, device) * 1000
        last_power, last_state = power.get(device.id), states.get(device.id)
        watts: float | None
        if last_power is not None and last_power[0] >= oldest_ms:
            t, watts = last_power
        elif last_state is not None and last_state[0] >= oldest_ms:
            t, watts = last_state[0], _state_watts(settings, device, last_state[1])
            if watts is None:
                no_reading.append(device.id)
                continue
            from_state.append(device.id)
        else:
            newest = max((x[0] for x in (last_power, last_state) if x is not None), default=None)
            if newest is None:
                no_reading.append(device.id)
            else:
                stale.append((device.id, newest))
            continue
        acc = sums.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += watts
        acc[1] = max(acc[1], t)
        acc[2] += 1
    rows = [
        PowerRow(key=k, power_w=w, time_ms=int(t), devices=int(n))
        for k, (w, t, n) in sorted(sums.items())
    ]
    return PowerReport(
        at_ms=at_ms,
        by=by,
        timezone=settings.tz.key,
        rows=rows,
        stale=stale,
        from_state=from_state,
        no_reading=no_reading,
    )


# -- rendering --------------------------------------------------------------------------
def iso_seconds(ms: int, tz: ZoneInfo) -> str:
    """An instant as local ISO 8601 to the second (power changes by the minute)."""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def _named(ids: list[str]) -> str:
    """'3 devices: a, b, c', naming at most the first ten."""
    shown = ", ".join(ids[:_LISTED])
    more = f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else ""
    return f"{len(ids)} device{'s' if len(ids) != 1 else ''}: {shown}{more}"


def notes(report: PowerReport, tz: ZoneInfo) -> list[str]:
    """What the sums leave out or estimate, one sentence each."""
    lines = []
    if report.stale:
        lines.append(
            "Left out, newest reading too old (older than max(3 × poll interval, "
            "energy.max_gap_s)): "
            + _named([f"{d} ({iso_seconds(t, tz)})" for d, t in report.stale])
        )
    if report.no_reading:
        lines.append("No power or state reading: " + _named(report.no_reading))
    if report.from_state:
        lines.append("From state × power profile (no power reading): " + _named(report.from_state))
    if report.by == "site":
        lines.append("By site, devices behind a meter (metered_by) count through the meter.")
    return lines


def to_json(report: PowerReport, tz: ZoneInfo) -> dict[str, Any]:
    """The report as a JSON document."""
    return {
        "at": iso_seconds(report.at_ms, tz),
        "by": report.by,
        "timezone": report.timezone,
        "rows": [
            {
                "key": r.key,
                "power_w": round(r.power_w, 3),
                "time": iso_seconds(r.time_ms, tz),
                "devices": r.devices,
            }
            for r in report.rows
        ],
        "total_w": round(report.total_w, 3),
        "left_out_stale": [{"device": d, "time": iso_seconds(t, tz)} for d, t in report.stale],
        "no_reading": report.no_reading,
        "from_state": report.from_state,
        "notes": notes(report, tz),
    }


def to_csv(report: PowerReport, tz: ZoneInfo) -> str:
    """The report as CSV with the header key,power_w,time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in report.rows:
        writer.writerow((r.key, f"{r.power_w:.3f}", iso_seconds(r.time_ms, tz)))
    return out.getvalue()


def to_table(report: PowerReport, tz: ZoneInfo) -> str:
    """The report as an aligned text table, its total and its notes."""
    head = (report.by, "power_w", "devices", "newest reading")
    body = [
        (r.key, f"{r.power_w:,.1f}", str(r.devices), iso_seconds(r.time_ms, tz))
        for r in report.rows
    ]
    total = ("total", f"{report.total_w:,.1f}", str(sum(r.devices for r in report.rows)), "")
    widths = [max(len(row[i]) for row in [head, *body, total]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in (1, 2) else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = line(tuple("-" * w for w in widths))
    lines = [
        f"Power at {iso_seconds(report.at_ms, tz)} ({report.timezone}), by {report.by}",
        line(head),
        rule,
        *(line(r) for r in body),
        rule,
        line(total),
    ]
    if not report.rows:
        lines.insert(3, "(no recent power or state readings)")
    return "\n".join([*lines, "", *notes(report, tz)]) + "\n"


def render(report: PowerReport, fmt: str, tz: ZoneInfo) -> str:
    """The report in one of the formats table, csv, json."""
    if fmt == "csv":
        return to_csv(report, tz)
    if fmt == "json":
        return json.dumps(to_json(report, tz), ensure_ascii=False, indent=2) + "\n"
    if fmt == "table":
        return to_table(report, tz)
    raise InputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
