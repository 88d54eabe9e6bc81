"""Gronkoll's meeting-room events: a meeting started or ended (schema v1, docs/mqtt.md).

    {"v": 1, "event": "started", "meeting_id": "2025-02-03-aulan-1", "room": "rum-aulan",
     "t": "2025-02-03T09:00:00+01:00", "participants": {"skola1": 5, "kommunhuset": 2}}

Participants are counted per site id, never named (DESIGN decision 8): a count that is not a
whole number 0 or more, or a site the configuration does not know, is quarantined (without
the payload's other keys) and left out. Each event is merged into a meeting row in the state
database (room, start, end, participants per site) for the travel-avoided report; an `ended`
without its `started` is still recorded. The room is the topic's device, else the payload's
`room`. A `participants` reading goes with each event: the total at the start, 0 at the end.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    gronkoll_message,
    redact_to_schema,
)
from gronkoll.collector.formats.times import (
    message_time,
)
from gronkoll.statedb import MeetingEvent

VERSION = 1
EVENTS = ("started", "ended")
SCHEMA_KEYS = frozenset({"v", "event", "meeting_id", "room", "t", "participants"})
MAX_ID = 128


class GronkollMeeting(Decoder):
    """A meeting started or ended in a room."""

    name = "gronkoll-meeting"

    def redact(self, data: bytes) -> str:
        """Only the schema's keys, and only whole-number participant counts, are kept."""
        return redact_to_schema(data, SCHEMA_KEYS, {"participants": _participant_counts})

    def decode(self, msg: Input) -> Decoded:
        """One meeting event, and the participants reading that goes with it."""
        out = Decoded()
        obj = gronkoll_message(msg, out, VERSION)
        if obj is None:
            return out
        event = obj.get("event")
        if event not in EVENTS:
            out.problem(f"event: {event!r} is not started or ended")
            return out
        meeting_id = obj.get("meeting_id")
        if not isinstance(meeting_id, str) or not 0 < len(meeting_id) <= MAX_ID:
            out.problem(f"meeting_id: must be text of 1 to {MAX_ID} characters")
            return out
        room = msg.device
        if "room" in obj:
            named = obj["room"]
            if not isinstance(named, str) or not named:
                out.problem("room: must be the room's device id")
                return out
            if room is not None and named != room:
                out.problem(f"room: {named!r} is not the topic's device {room!r}")
                return out
            room = out.device = named
        if room is None:
            out.problem("no room: neither the topic nor the payload names the room's device")
            return out
        t = message_time(obj, msg, out)
        counts = _participants(obj.get("participants", {}), msg, out)
        out.meetings.append(
            MeetingEvent(
                room=room,
                meeting_id=meeting_id,
                event=cast(Literal["started", "ended"], event),
                t_ms=t,
                participants=counts,
            )
        )
        total = sum(counts.values()) if event == "started" else 0
        out.readings.append(("participants", t, float(total)))
        return out


def _count(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    return None


def _participants(raw: object, msg: Input, out: Decoded) -> dict[str, int]:
    """Counts per configured site; anything else is a problem and left out."""
    if not isinstance(raw, dict):
        out.problem("participants: must be an object of counts per site id")
        return {}
    sites = {s.id for s in msg.settings.sites}
    counts: dict[str, int] = {}
    for site, n in raw.items():
        count = _count(n)
        if count is None:
            out.problem(f"participants: the count for site {site!r} must be a whole number >= 0")
        elif site not in sites:
            out.problem(f"participants: unknown site {site!r} (known: {', '.join(sorted(sites))})")
        else:
            counts[site] = count
    return counts


def _participant_counts(item: Any) -> Any:
    """The participants object as it may be kept: whole-number counts per site only."""
    if not isinstance(item, dict):
        return "<dropped>"
    return {str(s): (n if _count(n) is not None else "<dropped>") for s, n in item.items()}
