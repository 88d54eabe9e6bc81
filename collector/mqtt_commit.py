"""One batch of MQTT deliveries into the store: keys journalled, read, committed; what it stored.

`BatchCommitter` is the part of the ingestion that touches the store: it reads a batch through
the `MessagePipeline`, writes the batch's message keys to the journal (mqtt_journal.py), so a
resend is read as of its first receive time and stored once, and commits the readings,
quarantine entries and meetings. It raises GronkollError when the batch could not be stored;
the caller then leaves the batch unacknowledged. It also counts the messages each configured
device sent and saves those counts every few seconds.

It runs in the collector's process (under the writer lock the SNMP poller's writes hold too),
or in the commit worker process (mqtt_worker.py), which serves the same calls over a pipe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gronkoll.collector.messages import Handled, Message, MessagePipeline
from gronkoll.collector.mqtt import Delivery
from gronkoll.collector.mqtt_journal import Activity, DeliveryJournal, message_key
from gronkoll.runtime import Runtime

#: Device activity (message counts, newest message) is saved at most this often.
ACTIVITY_SAVE_S = 5.0


@dataclass(frozen=True, slots=True)
class Committed:
    """What one committed batch held and stored."""

    messages: int
    resends: int  # of them, resends recognised by their key
    readings: int  # readings stored
    quarantined: int  # quarantine entries kept


class Committer(Protocol):
    """Stores batches of deliveries; in this process or in a worker."""

    def forget_session(self) -> None:
        """The broker has a new session for us: clear the journal before the next batch."""
        ...

    def commit(self, batch: Sequence[Delivery]) -> Committed:
        """Store the batch, or raise GronkollError having stored none of it for good."""
        ...

    def save_activity(self, *, due_only: bool) -> None:
        """Save the devices' message counts (due_only: if ACTIVITY_SAVE_S have passed)."""
        ...

    def close(self) -> None:
        """Save what is unsaved and let go of what it holds."""
        ...


def session_name(runtime: Runtime) -> str:
    """The journal's name for our MQTT session: client id @ broker host:port."""
    mqtt = runtime.settings.mqtt
    if mqtt is None:
        raise ValueError("no mqtt section")
    return f"{mqtt.client_id}@{mqtt.host}:{mqtt.port}"


class BatchCommitter:
    """Commits batches in this process, under the given writer lock."""

    def __init__(
        self, runtime: Runtime, pipeline: MessagePipeline, *, writer_lock: threading.Lock
    ) -> None:
        self.runtime = runtime
        self.pipeline = pipeline
        self.lock = writer_lock
        self.journal = DeliveryJournal(runtime.state, session_name(runtime))
        self._forget = False
        self._activity: dict[str, Activity] = {}
        self._saved_at = time.monotonic()

    def forget_session(self) -> None:
        """The broker has a new session for us: clear the journal before the next batch."""
        self._forget = True

    def commit(self, batch: Sequence[Delivery]) -> Committed:
        """Journal the batch's keys, read it, store it; raises GronkollError if not stored."""
        keys = [message_key(d.mid, d.topic, d.payload) for d in batch]
        if self._forget:
            self.journal.forget()
            self._forget = False
        fresh: list[bool] | None = None  # which messages are taken the first time; None: all
        if any(d.dup for d in batch):
            messages, new, fresh = self._read_as_first(batch, keys)
        else:  # the usual batch: every message is taken the first time, at its receive time
            messages = [Message(d.topic, d.payload, d.received_ms) for d in batch]
            new = [(key, d.received_ms) for key, d in zip(keys, batch, strict=True)]
        handled = [self.pipeline.handle(m) for m in messages]
        with self.lock:
            self.journal.record(new)
            result = self.pipeline.commit(self.runtime, handled)
        if fresh is not None:
            handled = [h for h, f in zip(handled, fresh, strict=True) if f]
        self._note_activity(handled)
        return Committed(len(batch), len(batch) - len(new), result.stored, result.quarantined)

    def _read_as_first(
        self, batch: Sequence[Delivery], keys: list[int]
    ) -> tuple[list[Message], list[tuple[int, int]], list[bool]]:
        """A batch with resends as messages, each resend as of its first receive time.

        Also (key, receive time) of the messages taken the first time, and which those are.
        """
        resent = [k for k, d in zip(keys, batch, strict=True) if d.dup]
        known = self.journal.lookup(resent)
        messages: list[Message] = []
        new: list[tuple[int, int]] = []
        fresh: list[bool] = []
        first: dict[int, int] = {}
        for key, d in zip(keys, batch, strict=True):
            at = (first.get(key) or known.get(key)) if d.dup else None
            fresh.append(at is None)
            if at is None:
                at = d.received_ms
                new.append((key, at))
            first[key] = at
            messages.append(Message(d.topic, d.payload, at))
        return messages, new, fresh

    def _note_activity(self, handled: Iterable[Handled]) -> None:
        """Count first-time messages per configured device (a resend is not a new message)."""
        configured = self.pipeline.configured
        activity = self._activity
        for h in handled:
            device = h.device
            if device is None or device not in configured:
                continue
            a = activity.get(device)
            if a is None:
                a = activity[device] = Activity()
            a.messages += 1
            if h.quarantine:
                a.quarantined += 1
            message = h.message
            if message.received_ms >= a.last_ms:
                a.last_ms, a.last_topic = message.received_ms, message.topic

    def save_activity(self, *, due_only: bool) -> None:
        """Save the devices' message counts; raises GronkollError, keeping nothing unsaved."""
        if due_only and time.monotonic() - self._saved_at < ACTIVITY_SAVE_S:
            return
        self._saved_at = time.monotonic()
        if not self._activity:
            return
        activity, self._activity = self._activity, {}
        with self.lock:
            self.journal.save_activity(activity)

    def close(self) -> None:
        """Save the devices' message counts."""
        self.save_activity(due_only=False)
