"""The MQTT message pipeline: route, decode, check; then store a batch in one call.

`handle()` does no I/O: it routes a message to its device and format, decodes it and turns
what could not be used into quarantine entries. It never raises. `commit()` stores a batch
of handled messages: readings through the energy engine into the store, quarantine entries
and meetings into the state database. It raises GronkollError when anything could not be
stored, so the caller does not acknowledge those messages and the broker sends them again;
everything commit() writes is idempotent, so sending a batch again stores nothing twice
(DESIGN decision 4).

Readings not newer than the newest already processed for their (device, field) are dropped
as repeats (the energy engine does it, asked by commit()): over MQTT that is a redelivery or
a replay (a broker keeps each topic's messages in order), and storing it again, even flagged
LATE, would be storing it twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gronkoll.collector.formats import Decoded, Input
from gronkoll.collector.routes import Route, Routes
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings
from gronkoll.statedb import MeetingEvent, QuarantineEntry

log = logging.getLogger(__name__)

#: A reading: device id, field, time in ms since the epoch UTC, value in the field's unit.
Reading = tuple[str, str, int, float]
#: Distinct unknown topics (and kinds of problem) remembered for "logged once"; beyond
#: that they are only counted.
MAX_TOPICS_LOGGED = 10_000
#: Quoted values and numbers in a reason: what differs between messages of one problem.
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|-?\d[\d.:e+T-]*")

__all__ = [
    "CommitResult",
    "DeviceCounts",
    "Handled",
    "MeetingEvent",
    "Message",
    "MessagePipeline",
    "QuarantineEntry",
    "Reading",
]


class Message(NamedTuple):
    """One MQTT message as received (a named tuple: made per message, and cheap to make)."""

    topic: str
    payload: bytes
    received_ms: int  # receive time, ms since the epoch UTC


@dataclass(slots=True)
class Handled:
    """What the pipeline made of one message, ready to be committed."""

    message: Message
    device: str | None
    readings: list[Reading]
    quarantine: list[QuarantineEntry]
    meetings: list[MeetingEvent]
    #: why nothing was read: no mapping covers the topic, or the topic carries no readings
    #: (a relay state, an availability message, an agent's last will)
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one commit stored."""

    messages: int
    readings: int  # readings handed to the energy engine
    repeats: int  # readings dropped: not newer than their series' newest (redelivery, replay)
    stored: int
    duplicates: int
    intervals: int
    events: int
    energy_wh: float
    quarantined: int  # quarantine entries newly kept
    meetings: int  # meeting events written


@dataclass(slots=True)
class DeviceCounts:
    """Messages per device since the pipeline started."""

    messages: int = 0
    readings: int = 0
    quarantined: int = 0
    last_message_ms: int | None = None


@dataclass(slots=True)
class PipelineCounts:
    """Everything handle() has seen, for status pages and the replay summary."""

    messages: int = 0
    unrouted: int = 0  # no device topic or subscription covers the topic
    ignored: int = 0  # routed, but the topic carries no readings
    per_device: dict[str, DeviceCounts] = field(default_factory=dict)


class MessagePipeline:
    """Routes and decodes MQTT messages; commits them in batches."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes = Routes(settings)  # raises ConfigError for a bad mapping
        self.configured = frozenset(d.id for d in settings.devices)
        self.counts = PipelineCounts()
        self._state: dict[str, dict[str, Any]] = {}  # per-device decoder state
        self._logged_topics: set[str] = set()
        self._logged_problems: set[tuple[str, str]] = set()

    def topic_filters(self) -> list[str]:
        """The filters a client subscribes to for this configuration."""
        return self.routes.topic_filters()

    # -- one message -----------------------------------------------------------------
    def handle(self, message: Message) -> Handled:
        """Route and decode one message (no I/O); never raises."""
        self.counts.messages += 1
        route = self.routes.match(message.topic)
        if route is None:
            self.counts.unrouted += 1
            self._log_unrouted(message.topic)
            return Handled(message, None, [], [], [], ignored="no device topic or subscription")
        try:
            return self._decode(message, route)
        except Exception as err:  # a decoder bug must not stop the stream: quarantine it
            log.exception("decoding %s (%s) failed", message.topic, route.mapping.format)
            entry = self._entry(message, route, route.device, f"decoder error: {err!r}")
            return Handled(message, route.device, [], [entry], [])

    def _decode(self, message: Message, route: Route) -> Handled:
        # Called for every message: positional arguments and no calls that are not needed
        # (a keyword-built Input, an empty list comprehension) save microseconds here.
        device = route.device
        configured = self.configured
        if device is not None and device in configured:
            state = self._state.get(device)
            if state is None:  # the device's first message
                state = self._state[device] = {}
        else:
            state = {}
        decoded: Decoded = route.decoder.decode(
            Input(
                message.topic,
                message.payload,
                message.received_ms,
                route.mapping,
                device,
                self.settings,
                state,
            )
        )
        problems = decoded.problems
        if decoded.ignored is not None and not decoded.readings and not problems:
            self.counts.ignored += 1
            return Handled(message, device, [], [], [], ignored=decoded.ignored)
        device = device or decoded.device
        if device is None:
            reason = "cannot tell the device: " + (
                "; ".join(problems) or f"{route.source} names none in this topic"
            )
            return self._quarantined(message, route, None, [reason])
        if device not in configured:
            reason = f"device {device!r} is not configured"
            if "/" in device:
                reason += " (a name with a slash needs the device's own mqtt.topic)"
            return self._quarantined(message, route, device, [reason])
        readings = [(device, fld, t, v) for fld, t, v in decoded.readings]
        counts = self._device_counts(device, message)
        counts.readings += len(readings)
        entries = []
        if problems:
            entries = [self._entry(message, route, device, p) for p in problems]
            counts.quarantined += 1
            self._log_quarantine(route, device, message.topic, problems[0])
        return Handled(message, device, readings, entries, decoded.meetings)

    def _quarantined(
        self, message: Message, route: Route, device: str | None, reasons: list[str]
    ) -> Handled:
        known = self.counts.per_device
        # count unconfigured ids too, but not without bound (a device may invent topics)
        if device is not None and (
            device in known or len(known) < len(self.settings.devices) + MAX_TOPICS_LOGGED
        ):
            self._device_counts(device, message).quarantined += 1
        self._log_quarantine(route, device, message.topic, reasons[0])
        entries = [self._entry(message, route, device, r) for r in reasons]
        return Handled(message, device, [], entries, [])

    def _entry(
        self, message: Message, route: Route, device: str | None, reason: str
    ) -> QuarantineEntry:
        return QuarantineEntry(
            t_ms=message.received_ms,
            topic=message.topic,
            device_id=device,
            payload=route.decoder.redact(message.payload),
            payload_bytes=len(message.payload),
            reason=reason,
        )

    def _device_counts(self, device: str, message: Message) -> DeviceCounts:
        counts = self.counts.per_device.get(device)
        if counts is None:
            counts = self.counts.per_device[device] = DeviceCounts()
        counts.messages += 1
        if counts.last_message_ms is None or message.received_ms > counts.last_message_ms:
            counts.last_message_ms = message.received_ms
        return counts

    def _log_unrouted(self, topic: str) -> None:
        if topic in self._logged_topics or len(self._logged_topics) >= MAX_TOPICS_LOGGED:
            return
        self._logged_topics.add(topic)
        log.warning(
            "no device topic or subscription covers %r: ignored (further messages on it are "
            "counted, not logged)",
            topic,
        )

    def _log_quarantine(self, route: Route, device: str | None, topic: str, reason: str) -> None:
        """Log the first of each kind of problem per mapping: a fleet-wide fault logs once."""
        key = (route.source, _VALUES.sub("…", reason))
        if key in self._logged_problems or len(self._logged_problems) >= MAX_TOPICS_LOGGED:
            return
        self._logged_problems.add(key)
        log.warning(
            "%s: quarantined a message on %s (%s): %s (further messages with this problem "
            "are counted, not logged; see `gronkoll quarantine list`)",
            device or "unknown device",
            topic,
            route.source,
            reason,
        )

    # -- a batch ---------------------------------------------------------------------
    def commit(self, runtime: Runtime, handled: Sequence[Handled]) -> CommitResult:
        """Store a batch: readings through the energy engine, quarantine and meetings.

        Raises GronkollError (StoreError, StoreUnavailable) when anything could not be
        stored; the caller then does not acknowledge these messages.
        """
        readings = [r for h in handled for r in h.readings]
        stored = duplicates = intervals = events = repeats = 0
        energy_wh = 0.0
        if readings:
            # the engine drops the repeats: it holds each series' newest time at hand
            result = runtime.ingestor.ingest(readings, drop_repeats=True)
            stored, duplicates, repeats = result.stored, result.duplicates, result.repeats
            intervals, events, energy_wh = result.intervals, result.events, result.energy_wh
        entries = [q for h in handled for q in h.quarantine]
        meetings = [m for h in handled for m in h.meetings]
        kept, written = runtime.state.record_mqtt(entries, meetings)
        return CommitResult(
            messages=len(handled),
            readings=len(readings) - repeats,
            repeats=repeats,
            stored=stored,
            duplicates=duplicates,
            intervals=intervals,
            events=events,
            energy_wh=energy_wh,
            quarantined=kept,
            meetings=written,
        )
