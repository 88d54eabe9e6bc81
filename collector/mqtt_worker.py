"""The MQTT commit worker: a process of its own that decodes and stores batches of deliveries.

paho-mqtt's network thread and the committing thread share one interpreter lock, so in one
process reading messages and storing them take turns on one core. `WorkerCommitter` moves the
storing side into a child process (a fresh interpreter, collector/worker_process.py: the
collector has threads, and a
forked copy of them would hold their locks): the collector's process keeps the connection and
hands each batch of deliveries over a pipe, and acknowledges it only when the worker answers
that the batch was committed. The worker runs a `BatchCommitter` on a `Runtime` of its own
and is the store's one writer: the SNMP poller's readings come to it over the same pipe
(`ingest`), so one energy engine and one series numbering see every reading, as in a single
process. Requests are answered one at a time, in order.

A worker that dies (killed, out of memory) answers nothing: the batch it held is not
acknowledged, the caller drops the connection as for a refused commit, and the next batch
starts a new worker. What the dead worker committed is in the store and its keys in the
journal, so the broker's resends of it are recognised and stored once. Logging in the worker
is forwarded to the collector's process, so its warnings land where the collector's do.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import logging.handlers
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from gronkoll.collector.messages import MessagePipeline, Reading
from gronkoll.collector.mqtt import Delivery
from gronkoll.collector.mqtt_commit import BatchCommitter, Committed
from gronkoll.collector.worker_process import ChildProcess, log_pipe
from gronkoll.errors import GronkollError, StoreError, StoreUnavailable
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings

log = logging.getLogger(__name__)

#: The errors a worker reports by name, rebuilt as themselves in the collector's process.
ERRORS: dict[str, type[GronkollError]] = {
    e.__name__: e for e in (GronkollError, StoreError, StoreUnavailable)
}


class WorkerFailed(GronkollError):
    """The commit worker stopped without answering: its batch is not known to be stored."""


class WorkerCommitter:
    """Commits batches in a worker process; the same calls as `BatchCommitter`."""

    def __init__(self, settings: Settings, state_save_s: float) -> None:
        self.settings = settings
        self.state_save_s = state_save_s
        # Log records come over a pipe of their own (a multiprocessing Queue would leave
        # semaphores behind when the collector is killed).
        self._logs_in, self._logs_out = log_pipe()
        self._log_thread = threading.Thread(
            target=_forward_logs, args=(self._logs_in,), name="gronkoll-mqtt-log", daemon=True
        )
        self._log_thread.start()
        self._forget = False
        self._lock = threading.Lock()  # one request at a time: MQTT batches and SNMP writes
        self.starts = 0
        self._conn: Connection | None = None
        self._start()
        try:  # wait until it can store: messages are taken only then
            self._call(("open",))
        except GronkollError as err:
            log.warning("the MQTT commit worker cannot store yet (it tries again): %s", err)

    def _start(self) -> Connection:
        level = logging.getLogger().getEffectiveLevel()
        self.process = ChildProcess(
            serve, (self.settings, self.state_save_s, level), self._logs_out
        )
        self._conn = self.process.conn
        self.starts += 1
        if self.starts > 1:
            log.warning("started a new MQTT commit worker (pid %d)", self.process.pid)
        return self._conn

    def _call(self, request: tuple[Any, ...]) -> Any:
        """Send a request and wait for its answer; a dead worker raises WorkerFailed."""
        with self._lock:
            return self._call_locked(request)

    def _call_locked(self, request: tuple[Any, ...]) -> Any:
        conn = self._conn
        if conn is None or not self.process.is_alive():
            conn = self._restart()
        try:
            conn.send(request)
            kind, value = conn.recv()
        except (EOFError, OSError) as err:
            self.process.join(timeout=5)
            conn.close()
            self._conn = None
            raise WorkerFailed(
                f"the MQTT commit worker (pid {self.process.pid}) stopped "
                f"(exit code {self.process.exitcode}) before it answered: {err or 'no answer'}"
            ) from None
        if kind == "error":
            name, text = value
            raise ERRORS.get(name, GronkollError)(text)
        return value

    def _restart(self) -> Connection:
        if self._conn is not None:
            self._conn.close()
        self.process.join(timeout=5)
        return self._start()

    def forget_session(self) -> None:
        """The broker has a new session for us: the worker clears the journal first."""
        self._forget = True

    def commit(self, batch: Sequence[Delivery]) -> Committed:
        """Have the worker store the batch; raises GronkollError when it did not."""
        forget, self._forget = self._forget, False
        # The batch crosses the pipe as columns, a tuple per Delivery field: pickled here, in
        # the process whose network thread waits for the same interpreter lock, they cost
        # ~40 % less than a tuple per delivery (and unpickle faster in the worker).
        counts = self._call(("commit", tuple(zip(*batch, strict=True)), forget))
        return Committed(*counts)

    def ingest(
        self, readings: Sequence[Reading], moduli: Sequence[tuple[str, float | None]]
    ) -> int:
        """Have the worker store other readings (SNMP's); how many it stored.

        moduli: (device, where its energy counter wraps in Wh) from the devices' profiles.
        """
        stored: int = self._call(("ingest", list(readings), list(moduli)))
        return stored

    def save_activity(self, *, due_only: bool) -> None:
        """Have the worker save the devices' message counts."""
        if self.process.is_alive():
            self._call(("activity", due_only))

    def close(self) -> None:
        """Ask the worker to save everything and stop; wait for it."""
        try:
            if self._conn is not None and self.process.is_alive():
                self._call(("stop",))
        finally:
            if self._conn is not None:
                self._conn.close()
            self.process.join(timeout=60)
            if self.process.is_alive():
                log.error("the MQTT commit worker did not stop; killing it")
                self.process.kill()
                self.process.join()
            self._logs_out.send(None)
            self._log_thread.join(timeout=5)
            self._logs_out.close()
            self._logs_in.close()


def _forward_logs(logs: Connection) -> None:
    """Hand the worker's log records to this process's loggers, until None."""
    while True:
        try:
            record = logs.recv()
        except (EOFError, OSError):
            return
        if record is None:
            return
        logging.getLogger(record.name).handle(record)


class _PipeQueue:
    """What logging's QueueHandler needs of a queue, sending each record over a pipe."""

    def __init__(self, logs: Connection) -> None:
        self.logs = logs
        self.lock = threading.Lock()

    def put_nowait(self, record: logging.LogRecord) -> None:
        with self.lock, contextlib.suppress(OSError):  # the collector is gone: nobody to tell
            self.logs.send(record)


def serve(
    conn: Connection, logs: Connection, settings: Settings, state_save_s: float, level: int
) -> None:
    """The worker process: answer commit, activity and stop requests until stop or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the collector's to handle
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(_PipeQueue(logs))]  # type: ignore[arg-type]
    root.setLevel(level)
    # The collector migrated the state database before it started us.
    with Runtime(settings, state_save_s=state_save_s, migrate_state=False) as runtime:
        committer: BatchCommitter | None = None
        heap = LongLived()
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):  # the collector is gone: nothing more is acknowledged
                break
            try:
                if committer is None:
                    runtime.ingestor  # noqa: B018 (open the stores, restore the engine)
                    committer = BatchCommitter(
                        runtime, MessagePipeline(settings), writer_lock=threading.Lock()
                    )
                answer = _answer(committer, request)
            except GronkollError as err:
                answer, kind = (type(err).__name__, str(err)), "error"
            except Exception as err:  # a bug: say so; the batch stays unacknowledged
                log.exception("the MQTT commit worker could not answer %r", request[0])
                answer, kind = ("GronkollError", f"the MQTT commit worker failed: {err!r}"), "error"
            else:
                kind = "ok"
            try:
                conn.send((kind, answer))
            except OSError:  # the collector is gone
                break
            if request[0] == "stop":
                break
            if committer is not None:
                heap.settle(committer.runtime.ingestor.engine.series_count)
    conn.close()


class LongLived:
    """Keeps the worker's long-lived objects out of the cyclic garbage collector's passes.

    The worker holds hundreds of thousands of objects for its whole life (the settings, each
    series' integration state) and makes many short-lived ones per message; every full
    collection walked all of them again, about a tenth of the worker's time. `gc.freeze()`
    moves every object alive to a generation the collector skips (reference counting still
    frees them; only a reference cycle among them would stay). It is done after start-up and
    again whenever the engine keeps state for a tenth more series than at the last freeze (new
    devices heard from), after a full collection so that no garbage is frozen.
    """

    def __init__(self) -> None:
        self.frozen_at = -1  # series count at the last freeze

    def settle(self, series: int) -> None:
        """Freeze what is alive now if the engine's state grew enough since the last time."""
        if series > self.frozen_at * 1.1 + 100 or self.frozen_at < 0:
            gc.collect()
            gc.freeze()
            self.frozen_at = series


def _answer(committer: BatchCommitter, request: tuple[Any, ...]) -> Any:
    kind = request[0]
    if kind == "ingest":
        _, readings, moduli = request
        ingestor = committer.runtime.ingestor
        for device, modulus in moduli:
            ingestor.set_counter_modulus(device, modulus)
        return ingestor.ingest(readings).stored if readings else 0
    if kind == "commit":
        _, columns, forget = request
        if forget:
            committer.forget_session()
        done = committer.commit(list(map(Delivery._make, zip(*columns, strict=True))))
        return (done.messages, done.resends, done.readings, done.quarantined)
    if kind == "activity":
        committer.save_activity(due_only=request[1])
    elif kind == "stop":
        committer.close()
    return None  # open: the stores are open
