"""What `gronkoll spool status` shows: the spool's size, oldest entry and counters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gronkoll.timeparse import iso_local

#: Counters as the table names them, in the order shown.
COUNTER_LABELS = {
    "queued_readings": "readings queued",
    "sent_readings": "readings sent",
    "dropped_readings": "readings dropped (spool full, oldest evicted)",
    "rejected_readings": "readings refused by the store (malformed)",
    "queued_entries": "batches queued",
    "sent_entries": "batches sent",
    "dropped_entries": "batches dropped",
    "send_failures": "failed sends (retried)",
}


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """The spool's state, read from its file without the server."""

    path: Path
    entries: int
    size_bytes: int
    max_bytes: int
    oldest_ms: int | None
    counters: dict[str, int]
    last_error: str | None


def render_status(status: SpoolStatus, fmt: str, tz: ZoneInfo, now_ms: int) -> str:
    """The status as a table for people or as JSON for scripts."""
    age_s = None if status.oldest_ms is None else max(0.0, (now_ms - status.oldest_ms) / 1000)
    error_text = error_ms = None
    if status.last_error:
        stamp, _, error_text = status.last_error.partition(" ")
        error_ms = int(stamp) if stamp.isdigit() else None
    if fmt == "json":
        data = {
            "path": str(status.path),
            "entries": status.entries,
            "bytes": status.size_bytes,
            "max_bytes": status.max_bytes,
            "oldest_entry": None if status.oldest_ms is None else iso_local(status.oldest_ms, tz),
            "oldest_age_s": None if age_s is None else round(age_s, 1),
            "counters": status.counters,
            "last_error": error_text,
            "last_error_at": None if error_ms is None else iso_local(error_ms, tz),
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    pct = 100 * status.size_bytes / status.max_bytes if status.max_bytes else 0.0
    lines = [
        f"spool: {status.path}",
        f"  entries: {status.entries} batches, {status.size_bytes / 1e6:.2f} MB of "
        f"{status.max_bytes / 1e6:g} MB ({pct:.1f} %)",
        "  oldest entry: "
        + (
            "none (everything was sent)"
            if status.oldest_ms is None or age_s is None
            else f"{iso_local(status.oldest_ms, tz)} ({age_s:.0f} s ago)"
        ),
    ]
    lines += [f"  {label}: {status.counters.get(k, 0)}" for k, label in COUNTER_LABELS.items()]
    if error_text:
        when = f" at {iso_local(error_ms, tz)}" if error_ms is not None else ""
        lines.append(f"  last error{when}: {error_text}")
    return "\n".join(lines) + "\n"
