"""`gronkoll mqtt replay`: recorded MQTT messages through the same path as live traffic.

Each line of the file is `{"topic": ..., "payload": <the payload text>, "t": <ISO 8601
receive time>}`. Every message goes through the live pipeline (routes, decoders, quarantine),
the energy engine and the stores as if it arrived at its `t`. A line that is not such an
object is reported with its number and skipped. Replaying a file again stores nothing new.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gronkoll.collector.messages import CommitResult, Handled, Message, MessagePipeline
from gronkoll.errors import InputError
from gronkoll.runtime import Runtime
from gronkoll.timeparse import parse_instant

BATCH = 5_000
MAX_SHOWN = 50
KEYS = ("topic", "payload", "t")


@dataclass(slots=True)
class ReplaySummary:
    """What a replay read, quarantined and stored."""

    lines: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    messages: int = 0
    accepted: int = 0  # read, nothing quarantined
    partly: int = 0  # read, with some values quarantined
    quarantined: int = 0  # nothing read from it
    reasons: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    unrouted_topics: Counter[str] = field(default_factory=Counter)
    readings: int = 0
    repeats: int = 0
    stored: int = 0
    duplicates: int = 0
    intervals: int = 0
    events: int = 0
    energy_wh: float = 0.0
    meetings: int = 0

    def add_commit(self, result: CommitResult) -> None:
        """Count one committed batch."""
        self.readings += result.readings
        self.repeats += result.repeats
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.intervals += result.intervals
        self.events += result.events
        self.energy_wh += result.energy_wh
        self.meetings += result.meetings

    def add_handled(self, line: int, h: Handled) -> None:
        """Count one handled message."""
        if h.ignored is not None:
            self.ignored[h.ignored] += 1
            if h.device is None:
                self.unrouted_topics[h.message.topic] += 1
            return
        for entry in h.quarantine:
            self.reasons.append((line, entry.topic, entry.device_id, entry.reason))
        if not h.quarantine:
            self.accepted += 1
        elif h.readings or h.meetings:
            self.partly += 1
        else:
            self.quarantined += 1


def parse_line(text: str) -> Message:
    """One recorded message; InputError with the reason when the line is not one."""
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise InputError(f"not JSON: {err}") from None
    if not isinstance(obj, dict):
        raise InputError('expected an object {"topic": ..., "payload": ..., "t": ...}')
    missing = [k for k in KEYS if k not in obj]
    if missing:
        raise InputError(f"missing {', '.join(repr(k) for k in missing)}")
    topic, payload, t = obj["topic"], obj["payload"], obj["t"]
    if not isinstance(topic, str) or not topic:
        raise InputError("topic must be non-empty text")
    if not isinstance(payload, str):
        raise InputError("payload must be the payload's text (a JSON string)")
    if not isinstance(t, str):
        raise InputError("t must be an ISO 8601 time with an offset or Z")
    return Message(topic, payload.encode("utf-8"), parse_instant(t))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        try:
            yield from enumerate(handle, start=1)
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text: {err}") from None


def replay_file(path: Path, runtime: Runtime) -> ReplaySummary:
    """Feed every message of a recorded file through the pipeline and store it in batches."""
    pipeline = MessagePipeline(runtime.settings)
    summary = ReplaySummary()
    batch: list[Handled] = []
    for number, text in _lines(path):
        summary.lines = number
        if not text.strip():
            continue
        try:
            message = parse_line(text)
        except InputError as err:
            summary.bad_lines.append((number, str(err)))
            continue
        summary.messages += 1
        handled = pipeline.handle(message)
        summary.add_handled(number, handled)
        batch.append(handled)
        if len(batch) >= BATCH:
            summary.add_commit(pipeline.commit(runtime, batch))
            batch = []
    if batch:
        summary.add_commit(pipeline.commit(runtime, batch))
    return summary


def format_summary(path: Path, s: ReplaySummary) -> str:
    """The lines `gronkoll mqtt replay` prints."""
    ignored = sum(s.ignored.values())
    partly = f" ({s.partly} of them with values quarantined)" if s.partly else ""
    lines = [
        f"{path}: {s.messages} messages: {s.accepted + s.partly} accepted{partly}, "
        f"{s.quarantined} quarantined, {ignored} ignored"
        + (f"; {len(s.bad_lines)} bad lines skipped" if s.bad_lines else "")
    ]
    for number, reason in s.bad_lines[:MAX_SHOWN]:
        lines.append(f"  line {number}: {reason}")
    if len(s.bad_lines) > MAX_SHOWN:
        lines.append(f"  ... and {len(s.bad_lines) - MAX_SHOWN} more bad lines")
    if s.reasons:
        lines.append("Quarantined (see `gronkoll quarantine list`):")
        for number, topic, device, reason in s.reasons[:MAX_SHOWN]:
            lines.append(f"  line {number}: {topic} ({device or 'no device'}): {reason}")
        if len(s.reasons) > MAX_SHOWN:
            lines.append(f"  ... and {len(s.reasons) - MAX_SHOWN} more")
    if ignored:
        lines.append("Ignored:")
        for reason, n in s.ignored.most_common():
            lines.append(f"  {n} x {reason}")
        if s.unrouted_topics:
            topics = ", ".join(t for t, _ in s.unrouted_topics.most_common(10))
            lines.append(f"  topics without a mapping: {topics}")
    dropped = s.repeats + s.duplicates
    lines.append(
        f"Stored {s.stored} readings"
        + (f" ({dropped} dropped: already stored, or older than what is)" if dropped else "")
        + f": {s.intervals} energy intervals, {s.energy_wh / 1000:,.3f} kWh"
        + (f"; {s.meetings} meeting events" if s.meetings else "")
    )
    if s.events:
        lines.append(
            f"{s.events} events recorded (gaps, resets, glitches or rejected values); "
            "see them with `gronkoll events`"
        )
    return "\n".join(lines)
