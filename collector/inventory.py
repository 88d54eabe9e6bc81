"""`gronkoll devices`: every configured device with its status, profile and latest readings.

A device with an snmp block has the poller's status row (last success, last error, failures,
profile and why it was chosen, the last poll's problems). A device that speaks MQTT (its own
`mqtt` topic, or messages that came through a subscription) shows its MQTT activity: the last
message's time and topic, and how many messages were taken and quarantined. Any device,
polled or not, shows its newest reading of each field with its unit, and its status follows
from those readings when nothing polls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gronkoll.collector.poller import CONFIGURED
from gronkoll.fields import STATES, base_field, unit_of
from gronkoll.power import iso_seconds, max_age_s
from gronkoll.settings import Device, Settings
from gronkoll.statedb import DeviceStatus
from gronkoll.stores.base import TimeSeriesStore

FORMATS = ("table", "json")
Latest = dict[str, dict[str, tuple[int, float]]]  # device -> field -> (time ms, value)


def latest_readings(store: TimeSeriesStore) -> Latest:
    """The newest reading of every field, per device."""
    out: Latest = {}
    for field in sorted({f for _, f in store.last_times()}):
        for device, point in store.latest(field).items():
            out.setdefault(device, {})[field] = point
    return out


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def status_word(
    settings: Settings, device: Device, row: DeviceStatus | None, newest_ms: int | None, now_ms: int
) -> str:
    """ok, failing, stale, not polled (SNMP); reporting, silent, no readings (others)."""
    fresh_after = now_ms - max_age_s(settings, device) * 1000
    if device.snmp is not None:
        if row is None or row.last_poll_at is None:
            return "not polled"
        if row.consecutive_failures:
            return "failing"
        polled = _ms(row.last_poll_at)
        return "ok" if polled is not None and polled >= fresh_after else "stale"
    if newest_ms is None:
        return "no readings"
    return "reporting" if newest_ms >= fresh_after else "silent"


def _value(field: str, value: float) -> str:
    if base_field(field) == "state" and 0 <= int(value) < len(STATES):
        return STATES[int(value)]
    return f"{value:.10g}"


def entries(
    settings: Settings, statuses: dict[str, DeviceStatus], latest: Latest, now_ms: int
) -> list[dict[str, Any]]:
    """One JSON-ready entry per configured device, in config order."""
    tz = settings.tz

    def when(moment: datetime | None) -> str | None:
        ms = _ms(moment)
        return None if ms is None else iso_seconds(ms, tz)

    out = []
    for device in settings.devices:
        row = statuses.get(device.id)
        readings = latest.get(device.id, {})
        newest = max((t for t, _ in readings.values()), default=None)
        snmp = device.snmp
        out.append(
            {
                "id": device.id,
                "name": device.name,
                "kind": device.kind,
                "site": device.site,
                "metered_by": device.metered_by,
                "snmp": None if snmp is None else f"{snmp.host}:{snmp.port} (v{snmp.version})",
                "status": status_word(settings, device, row, newest, now_ms),
                "last_success": when(row.last_success) if row else None,
                "last_error": row.last_error if row else None,
                "last_error_at": when(row.last_error_at) if row else None,
                "consecutive_failures": row.consecutive_failures if row else 0,
                "last_poll": when(row.last_poll_at) if row else None,
                "last_duration_s": row.last_duration_s if row else None,
                "profile": (row.profile if row else None) or device.profile,
                "profile_reason": row.profile_reason if row else None,
                "problems": row.problem_list if row else [],
                "last_problem": row.last_problem if row else None,
                "last_problem_at": when(row.last_problem_at) if row else None,
                "mqtt": mqtt_activity(device, row, when),
                "newest_reading": None if newest is None else iso_seconds(newest, tz),
                "readings": {
                    f: {
                        "value": v,
                        "text": _value(f, v),
                        "unit": unit_of(f),
                        "time": iso_seconds(t, tz),
                    }
                    for f, (t, v) in sorted(readings.items())
                },
            }
        )
    return out


def mqtt_activity(
    device: Device, row: DeviceStatus | None, when: Callable[[datetime | None], str | None]
) -> dict[str, Any] | None:
    """A device's MQTT topic and activity, or None when it has never spoken MQTT."""
    if device.mqtt is None and (row is None or row.mqtt_messages is None):
        return None
    return {
        "topic": device.mqtt.topic if device.mqtt else None,
        "format": device.mqtt.format if device.mqtt else None,
        "last_message": when(row.mqtt_last_message_at) if row else None,
        "last_topic": row.mqtt_last_topic if row else None,
        "messages": (row.mqtt_messages or 0) if row else 0,
        "quarantined": (row.mqtt_quarantined or 0) if row else 0,
    }


def _mqtt_line(mqtt: dict[str, Any]) -> str:
    """The MQTT line under a device in the table."""
    n, q = mqtt["messages"], mqtt["quarantined"]
    if not n:
        return f"    mqtt: no message yet on {mqtt['topic']} ({mqtt['format']})"
    return (
        f"    mqtt: last message {mqtt['last_message']} on {mqtt['last_topic']}; "
        f"{n} message{'s' if n != 1 else ''}, {q} quarantined"
    )


def _profile_cell(entry: dict[str, Any]) -> str:
    """The profile and how it was chosen, short: the reason goes on a line of its own."""
    if not entry["profile"]:
        return "-"
    how = entry["profile_reason"]
    if how is None:
        return str(entry["profile"])
    return f"{entry['profile']} ({'configured' if how == CONFIGURED else 'detected'})"


def to_table(items: list[dict[str, Any]]) -> str:
    """A line per device, then indented lines for its error, problems and readings."""
    head = ("device", "kind", "site", "status", "last success", "profile")
    rows = [
        (
            e["id"],
            e["kind"],
            e["site"],
            e["status"],
            e["last_success"] or "-",
            _profile_cell(e),
        )
        for e in items
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        return "  ".join([*cells, row[-1]]).rstrip()

    lines = [line(head), line(tuple("-" * w for w in [*widths, 7]))]
    for e, row in zip(items, rows, strict=True):
        lines.append(line(row))
        if e["profile_reason"] not in (None, CONFIGURED):
            lines.append(f"    profile: {e['profile_reason']}")
        failures = e["consecutive_failures"]
        if failures:
            lines.append(
                f"    error ({failures} failed poll{'s' if failures != 1 else ''}, "
                f"last {e['last_error_at']}): {e['last_error']}"
            )
        if e["mqtt"] is not None:
            lines.append(_mqtt_line(e["mqtt"]))
        for problem in e["problems"]:
            lines.append(f"    problem: {problem}")
        if not e["problems"] and e["last_problem"]:
            lines.append(f"    last problem ({e['last_problem_at']}): {e['last_problem']}")
        if e["readings"]:
            shown = ", ".join(
                f"{f} {r['text']}{' ' + r['unit'] if r['unit'] else ''}"
                for f, r in e["readings"].items()
            )
            lines.append(f"    latest ({e['newest_reading']}): {shown}")
    if not items:
        lines.append("(no devices configured)")
    return "\n".join(lines) + "\n"


def render(items: list[dict[str, Any]], fmt: str, tz: ZoneInfo) -> str:
    """The device list as a table or JSON."""
    if fmt == "json":
        document = {"timezone": tz.key, "devices": items}
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return to_table(items)
