"""MQTT messages into the store: in batches, resends recognised, committed, then acknowledged.

Threads: paho's network thread puts each delivery in the `Inbox`; one committer thread
takes whatever waits there (up to half the in-flight window, so the broker can send the
next half during a commit), has a `Committer` read and commit it, and only then
acknowledges it. A delivery holds an in-flight slot from arrival to acknowledgement; with
``max_inflight`` slots held, paho's thread waits, the socket fills, and the broker holds the
rest (on MQTT 5 the broker also knows our window: Receive Maximum).

The committer is a `BatchCommitter` in this process (mqtt_commit.py), under the writer lock
the SNMP poller's writes hold too, or the same in a worker process (mqtt_worker.py), so that
reading the network and storing run on two cores. Either way the batch's message keys go to
the journal (mqtt_journal.py) before the commit, so a resend is stored once.

A commit the store refuses is not retried here: the batch and everything waiting are let go
unacknowledged, and the connection is dropped and made again after a backoff, so the broker
sends them all again (that is the only way to have a broker resend: MQTT has no nack).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gronkoll.collector.messages import MessagePipeline
from gronkoll.collector.mqtt import FIRST_BACKOFF_S, ClientFactory, Delivery, Outage, new_client
from gronkoll.collector.mqtt_commit import ACTIVITY_SAVE_S, BatchCommitter, Committer
from gronkoll.collector.mqtt_connection import MqttConnection
from gronkoll.errors import GronkollError
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings

log = logging.getLogger(__name__)

#: How long the committer waits for a batch to fill once a message is waiting: a commit's
#: cost is mostly per batch, and a twentieth of a second means nothing to energy readings.
BATCH_LINGER_S = 0.05
#: Quarantine entries older than mqtt.quarantine_keep_days are deleted at start and this often.
PRUNE_EVERY_S = 3600.0


class Inbox:
    """Deliveries on their way to the committer; at most `limit` held until acknowledged."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._cond = threading.Condition()
        self._waiting: deque[Delivery] = deque()
        self._held = 0  # put and not yet done (acknowledged or let go)
        self._closed = False
        self._last_put = time.monotonic()
        self._want = 1  # deliveries waiting that are worth waking the committer for

    def put(self, delivery: Delivery) -> bool:
        """Queue a delivery, waiting while every slot is held; False once closed."""
        with self._cond:
            while self._held >= self.limit and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._waiting.append(delivery)
            self._held += 1
            self._last_put = time.monotonic()
            # Wake the committer for the first delivery and for a full batch, not for each.
            if len(self._waiting) in (1, self._want) or self._held >= self.limit:
                self._cond.notify_all()
            return True

    def take(self, most: int, timeout: float, linger: float = 0.0) -> list[Delivery]:
        """Up to `most` waiting deliveries, waiting at most timeout for one; [] if none.

        Once one waits, more are awaited for up to `linger` seconds, until `most` wait or no
        slot is free for another: while messages trickle in, a commit then holds many of
        them rather than one or two, and costs less per message.
        """
        with self._cond:
            if not self._waiting and not self._closed:
                self._cond.wait(timeout)
            if self._waiting and linger > 0:
                end = time.monotonic() + linger
                self._want = most
                try:
                    while (
                        len(self._waiting) < most
                        and self._held < self.limit
                        and not self._closed
                        and (left := end - time.monotonic()) > 0
                    ):
                        self._cond.wait(left)
                finally:
                    self._want = 1
            n = min(most, len(self._waiting))
            return [self._waiting.popleft() for _ in range(n)]

    def done(self, n: int) -> None:
        """Free the slots of n deliveries that were acknowledged or let go."""
        with self._cond:
            self._held -= n
            self._cond.notify_all()

    def discard(self) -> int:
        """Let go of everything waiting (it stays unacknowledged); how many that was."""
        with self._cond:
            n = len(self._waiting)
            self._waiting.clear()
            self._held -= n
            self._cond.notify_all()
            return n

    def close(self) -> None:
        """Take no more deliveries; what waits can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def held(self) -> int:
        """Deliveries taken in and not yet acknowledged or let go."""
        return self._held

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def wait_quiet(self, quiet_s: float, deadline: float) -> bool:
        """Wait until nothing is held and nothing came for quiet_s; False at the deadline."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._held == 0 and now - self._last_put >= quiet_s:
                    return True
                if now >= deadline:
                    return False
                wake = self._last_put + quiet_s if self._held == 0 else deadline
                self._cond.wait(max(0.01, min(wake, deadline) - now))


@dataclass(slots=True)
class IngestCounts:
    """What the ingestion did since it started."""

    messages: int = 0  # committed (resends included)
    resends: int = 0  # of them, resends recognised by their key
    readings: int = 0  # readings stored
    quarantined: int = 0  # quarantine entries kept
    refused_commits: int = 0


class MqttIngest:
    """Subscribes, commits what arrives in batches, and acknowledges what was committed.

    committer: a commit worker (mqtt_worker.py), so that reading the network and storing run
    on two cores; without one, batches are committed in this process, under writer_lock.
    """

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        pipeline: MessagePipeline,
        *,
        writer_lock: threading.Lock,
        client_factory: ClientFactory = new_client,
        on_fatal: Callable[[GronkollError], object] | None = None,
        committer: Committer | None = None,
    ) -> None:
        if settings.mqtt is None:
            raise ValueError("no mqtt section")
        self.settings = settings
        self.runtime = runtime
        self.pipeline = pipeline
        self.lock = writer_lock
        window = settings.mqtt.max_inflight
        self.reconnect_max_s = settings.mqtt.reconnect_max_s
        self.quarantine_keep_days = settings.mqtt.quarantine_keep_days
        self.batch_max = max(1, min(settings.collector.batch_size, window // 2))
        self.inbox = Inbox(window)
        # Without a committer given (a commit worker, which its owner closes), commit here.
        self._own_committer = committer is None
        self.committer: Committer = committer or BatchCommitter(
            runtime, pipeline, writer_lock=writer_lock
        )
        self.connection = MqttConnection(
            settings,
            pipeline.topic_filters(),
            self.inbox.put,
            client_factory=client_factory,
            on_fatal=on_fatal,
            on_session=self._session,
        )
        self.counts = IngestCounts()
        self.store_outage = Outage("MQTT messages")
        self._backoff_s = FIRST_BACKOFF_S
        self._pruned_at: float | None = None
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------------
    def start(self) -> None:
        """Start committing, and connect in the background."""
        self._thread = threading.Thread(
            target=self._run, args=(self.committer,), name="gronkoll-mqtt-commit", daemon=True
        )
        self._thread.start()
        self.connection.start()

    def stop(self) -> None:
        """Commit and acknowledge what has arrived, then disconnect (the session stays)."""
        self.inbox.close()
        if self._thread is not None:
            self._thread.join()
        self.connection.stop()
        try:
            if self._own_committer:
                self.committer.close()
            else:
                self.committer.save_activity(due_only=False)
        except GronkollError as err:
            log.warning("could not save MQTT device activity (message counts): %s", err)

    def drain(self, *, connect_s: float, quiet_s: float, max_s: float) -> str | None:
        """Wait for what the broker holds for our session to be stored; None, or why not."""
        deadline = time.monotonic() + max_s
        self.connection.settled.wait(connect_s)
        if self.connection.fatal is not None:
            return str(self.connection.fatal)
        if not self.connection.subscribed.is_set():
            why = self.connection.outage.error or "no answer"
            return f"MQTT broker {self.connection.address}: {why}"
        if not self.inbox.wait_quiet(quiet_s, deadline):
            log.warning("MQTT messages kept coming for %g s; stopping anyway", max_s)
        return None

    @property
    def fatal(self) -> GronkollError | None:
        """The error that stopped the connection at start, if any."""
        return self.connection.fatal

    def _session(self, present: bool) -> None:
        if not present:
            # A new session: the broker will resend nothing of the old; the committer clears
            # the journal before its next batch.
            self.committer.forget_session()

    # -- the committer thread ------------------------------------------------------------
    def _run(self, committer: Committer) -> None:
        while True:
            if self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
                self._prune_quarantine()
            batch = self.inbox.take(self.batch_max, timeout=ACTIVITY_SAVE_S, linger=BATCH_LINGER_S)
            if batch:
                try:
                    self._commit(batch, committer)
                except Exception as err:  # a bug: keep going, the messages stay unacked
                    log.exception("could not commit %d MQTT messages", len(batch))
                    self._not_stored(batch, err)
            elif self.inbox.closed:
                break
            self._save_activity(committer)

    def _commit(self, batch: list[Delivery], committer: Committer) -> None:
        try:
            done = committer.commit(batch)
        except GronkollError as err:
            self._not_stored(batch, err)
            return
        self.connection.ack(batch)
        self.inbox.done(len(batch))
        self.store_outage.ended("stored again")
        self._backoff_s = FIRST_BACKOFF_S
        c = self.counts
        c.messages += done.messages
        c.resends += done.resends
        c.readings += done.readings
        c.quarantined += done.quarantined

    def _not_stored(self, batch: list[Delivery], err: Exception) -> None:
        """Let the batch and everything waiting go unacknowledged; reconnect after a backoff."""
        self.counts.refused_commits += 1
        hold = self._backoff_s
        self.store_outage.failed(
            f"cannot store them: {err}",
            "they stay unacknowledged, and the broker sends them again after a reconnect "
            f"(in {hold:g} s, then at most every {self.reconnect_max_s:g} s while this lasts)",
        )
        let_go = self.inbox.discard()
        self.inbox.done(len(batch))
        log.debug("let %d MQTT messages go unacknowledged", len(batch) + let_go)
        self._backoff_s = min(hold * 2, self.reconnect_max_s)
        self.connection.reconnect(hold)

    def _prune_quarantine(self) -> None:
        """Delete quarantine entries older than mqtt.quarantine_keep_days."""
        self._pruned_at = time.monotonic()
        days = self.quarantine_keep_days
        try:
            with self.lock:
                gone = self.runtime.state.prune_quarantine(datetime.now(UTC) - timedelta(days=days))
        except GronkollError as err:
            log.warning("could not delete old MQTT quarantine entries: %s", err)
            return
        if gone:
            log.info("deleted %d MQTT quarantine entries older than %d days", gone, days)

    def _save_activity(self, committer: Committer) -> None:
        try:
            committer.save_activity(due_only=True)
        except GronkollError as err:
            log.warning("could not save MQTT device activity (message counts): %s", err)
