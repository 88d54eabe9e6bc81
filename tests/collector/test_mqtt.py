"""The live MQTT client against a real Mosquitto: acks after the store, resends counted once.

Faults are injected by wrapping the real paho client the factory builds (never a fake): an
ack that never reaches the broker, a connection cut under the client, a store that is locked.
Payloads here are Shelly-style plain numbers: they carry no time, so a resend read at a new
receive time would be a second reading (and an old counter value at a new time looks like a
reset), which is what the redelivery journal must prevent.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as paho
import pytest
import servers
from mqtt_traffic import (
    Publisher,
    assert_each_once,
    energy_wh,
    forget_session,
    stored_rows,
    wait_for,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gronkoll import multirow_insert
from gronkoll.collector import mqtt_client, mqtt_ingest, mqtt_journal
from gronkoll.collector.messages import MessagePipeline
from gronkoll.collector.mqtt import Delivery, MqttRefused, new_client
from gronkoll.collector.mqtt_client import CollectorClient
from gronkoll.collector.mqtt_connection import MqttConnection
from gronkoll.collector.mqtt_ingest import Inbox, MqttIngest
from gronkoll.collector.mqtt_journal import Activity, DeliveryJournal, message_key
from gronkoll.collector.mqtt_topics import covers, subscription_filters
from gronkoll.collector.mqtt_worker import WorkerCommitter
from gronkoll.collector.run import StoreSink
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings, parse_settings
from gronkoll.statedb import StateDB

DEVICES = 20
PER_DEVICE = 10


# -- arranging ------------------------------------------------------------------------------
@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so no other session gets its messages."""
    return "gk-" + uuid.uuid4().hex[:8]


def make_settings(tmp_path: Path, broker: servers.Mosquitto, prefix: str, **mqtt: Any) -> Settings:
    """Counters of DEVICES meters on <prefix>/<device>/energi, as plain numbers in Wh."""
    section: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": f"{prefix}-collector",
        "reconnect_max_s": 1,
        "subscriptions": [
            {
                "topic": f"{prefix}/+/energi",
                "format": "number",
                "device_level": 1,
                "field": "energy_wh_total",
            }
        ],
    }
    section.update(mqtt)
    return parse_settings(
        {
            "municipality": {"name": "Exempelby"},
            "sites": [{"id": "skola1"}],
            # a meter that could draw 1 GW: counter steps milliseconds apart stay plausible
            "devices": [
                {"id": f"m{i:03d}", "site": "skola1", "kind": "meter", "rated_power_w": 1e9}
                for i in range(DEVICES)
            ],
            "mqtt": section,
            "store": {"path": "data", "busy_timeout_s": 0.2},
        },
        tmp_path / "gronkoll.yaml",
    )


def counters(prefix: str, rounds: range = range(PER_DEVICE)) -> list[tuple[str, str]]:
    """Each device's counter, 1000 + round Wh, one round of every device after another."""
    return [(f"{prefix}/m{i:03d}/energi", str(1000 + k)) for k in rounds for i in range(DEVICES)]


def expected(rounds: range = range(PER_DEVICE)) -> dict[tuple[str, str], list[float]]:
    return {(f"m{i:03d}", "energy_wh_total"): [1000.0 + k for k in rounds] for i in range(DEVICES)}


def every_device(wh: float) -> dict[str, float]:
    return {f"m{i:03d}": wh for i in range(DEVICES)}


@contextmanager
def ingesting(
    settings: Settings,
    broker: servers.Mosquitto,
    factory: Callable[[Settings], CollectorClient] = new_client,
    *,
    worker: bool = False,
) -> Iterator[MqttIngest]:
    """A started MqttIngest on its own Runtime; stopped (and its session dropped) after.

    worker: commit in a commit worker process, as `gronkoll collect` does.
    """
    assert settings.mqtt is not None
    with Runtime(settings) as runtime, ExitStack() as stack:
        runtime.ingestor  # noqa: B018 (open the stores before any thread uses them)
        committer = None
        if worker:
            committer = WorkerCommitter(settings, 0.0)
            stack.callback(committer.close)
        ingest = MqttIngest(
            settings,
            runtime,
            MessagePipeline(settings),
            writer_lock=threading.Lock(),
            client_factory=factory,
            committer=committer,
        )
        ingest.start()
        try:
            yield ingest
        finally:
            ingest.stop()
            forget_session(broker.port, settings.mqtt.client_id)


@pytest.fixture
def publisher(mosquitto: servers.Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


class AckSpy:
    """Wraps the real client's ack: records every ack, and can hold some back from the broker."""

    def __init__(self, hold_first: int = 0) -> None:
        self.hold_first = hold_first
        self.held: list[int] = []
        self.sent: list[int] = []
        self.clients: list[CollectorClient] = []

    def factory(self, settings: Settings) -> CollectorClient:
        client = new_client(settings)
        real_ack_many = client.ack_many

        def ack_many(mids: Iterable[int]) -> None:
            mids = list(mids)
            room = max(0, self.hold_first - len(self.held))
            self.held.extend(mids[:room])  # committed, but the broker never hears of them
            self.sent.extend(mids[room:])
            real_ack_many(mids[room:])

        client.ack_many = ack_many  # type: ignore[method-assign]
        self.clients.append(client)
        return client

    def cut(self) -> None:
        """Cut the live connection under paho, as a network failure would."""
        sock = self.clients[-1].socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)


# -- acknowledgements and resends --------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(("protocol", "worker"), [("5", False), ("3.1.1", False), ("5", True)])
def test_a_resend_of_a_stored_message_is_recognised_and_stored_once(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    publisher: Publisher,
    prefix: str,
    protocol: str,
    worker: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The first 10 acks never reach the broker (as if we crashed between commit and ack):
    # after the connection is cut, the broker sends those 10 again, flagged DUP.
    spy = AckSpy(hold_first=10)
    settings = make_settings(tmp_path, mosquitto, prefix, protocol=protocol, max_inflight=50)
    with ingesting(settings, mosquitto, spy.factory, worker=worker) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        total = publisher.publish_all(counters(prefix))
        wait_for(lambda: ingest.counts.messages == total, f"{total} messages committed")
        assert len(spy.held) == 10 and ingest.counts.resends == 0
        with caplog.at_level(logging.WARNING, logger="gronkoll.collector"):
            spy.cut()
            wait_for(
                lambda: ingest.counts.resends >= 10 and ingest.inbox.held == 0,
                "the resends, read again and acknowledged",
            )
        assert ingest.connection.connects == 2 and len(spy.held) == 10
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    assert energy_wh(rows) == every_device(PER_DEVICE - 1)
    logged = [r.getMessage() for r in caplog.records]
    assert sum("lost the connection" in m for m in logged) == 1, logged
    assert sum("connected again" in m for m in logged) == 1, logged


@pytest.mark.integration
@pytest.mark.parametrize("worker", [False, True])
def test_a_commit_the_store_refuses_is_not_acknowledged_and_comes_back(
    tmp_path: Path, mosquitto: servers.Mosquitto, publisher: Publisher, prefix: str, worker: bool
) -> None:
    spy = AckSpy()
    settings = make_settings(tmp_path, mosquitto, prefix)
    with ingesting(settings, mosquitto, spy.factory, worker=worker) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        # Another process holds the store's write lock: every commit fails.
        blocker = sqlite3.connect(settings.store_path / "timeseries.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            total = publisher.publish_all(counters(prefix))
            wait_for(lambda: ingest.counts.refused_commits >= 2, "two refused commits")
            assert spy.sent == [] and ingest.counts.messages == 0  # nothing acknowledged
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # The client reconnected by itself; the broker sent everything again.
        wait_for(
            lambda: ingest.connection.acks_sent >= total, "every message stored and acknowledged"
        )
        assert ingest.connection.connects >= 2
        assert ingest.counts.resends > 0  # read again as of their first receive time
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    assert energy_wh(rows) == every_device(PER_DEVICE - 1)


@pytest.mark.integration
def test_a_commit_worker_killed_mid_commit_acknowledges_nothing_and_a_new_one_stores_it_once(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    publisher: Publisher,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No lingering for a fuller batch: the first message goes to the worker at once, so the
    # worker is mid-commit by the time every message is taken in.
    monkeypatch.setattr(mqtt_ingest, "BATCH_LINGER_S", 0.0)
    spy = AckSpy()
    settings = make_settings(tmp_path, mosquitto, prefix)
    # The worker waits up to 60 s for the store's lock, so it is still mid-commit when killed.
    store = settings.store.model_copy(update={"busy_timeout_s": 60.0})
    settings = settings.model_copy(update={"store": store})
    with ingesting(settings, mosquitto, spy.factory, worker=True) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        worker = cast(WorkerCommitter, ingest.committer).process
        blocker = sqlite3.connect(settings.store_path / "timeseries.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            total = publisher.publish_all(counters(prefix))
            wait_for(lambda: ingest.inbox.held == total, "every message taken in")
            with caplog.at_level(logging.WARNING, logger="gronkoll.collector"):
                os.kill(worker.pid, signal.SIGKILL)  # mid-commit: waiting for the store
                wait_for(lambda: ingest.counts.refused_commits >= 1, "the batch let go")
            assert spy.sent == [] and ingest.counts.messages == 0  # nothing acknowledged
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # A new worker stores the broker's resends, and only then are they acknowledged.
        wait_for(lambda: ingest.connection.acks_sent >= total, "every message acknowledged")
        assert cast(WorkerCommitter, ingest.committer).process.pid != worker.pid
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    assert energy_wh(rows) == every_device(PER_DEVICE - 1)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"commit worker (pid {worker.pid}) stopped (exit code -9)" in logged, logged


@pytest.mark.integration
def test_messages_larger_than_a_read_ahead_come_through_whole_among_small_ones(
    tmp_path: Path, mosquitto: servers.Mosquitto, publisher: Publisher, prefix: str
) -> None:
    # The client reads the socket READ_AHEAD bytes at a time: a payload larger than that
    # arrives in several reads, between small messages that share a read.
    big = "x" * (3 * mqtt_client.READ_AHEAD + 17)
    settings = make_settings(tmp_path, mosquitto, prefix)
    with ingesting(settings, mosquitto) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        messages = counters(prefix)
        total = publisher.publish_all(
            [*messages[:50], (f"{prefix}/m001/energi", big), *messages[50:]]
        )
        wait_for(lambda: ingest.connection.acks_sent >= total, "every message acknowledged")
        (entry,) = ingest.runtime.state.quarantined()
    assert entry.payload_bytes == len(big) and entry.device_id == "m001"
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    assert energy_wh(rows) == every_device(PER_DEVICE - 1)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_with_properties_or_at_qos_0_come_through_as_plain_ones_do(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    prefix: str,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CollectorClient takes plain PUBLISH packets itself and leaves the others to paho (which
    # calls on_message): here every third message carries MQTT 5 properties (the broker
    # passes them on to an MQTT 5 subscriber only) and every fifth is published at QoS 0.
    taken_by_paho = []
    real_message = MqttConnection._message

    def message(self: MqttConnection, *args: Any) -> None:
        taken_by_paho.append((args[-1].topic, args[-1].payload.decode()))
        real_message(self, *args)

    monkeypatch.setattr(MqttConnection, "_message", message)
    sender = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    sender.connect(servers.HOST, mosquitto.port)
    sender.loop_start()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = ("site", "skola1")
    props.ContentType = "text/plain"
    settings = make_settings(tmp_path, mosquitto, prefix, protocol=protocol)
    try:
        with ingesting(settings, mosquitto) as ingest:
            wait_for(ingest.connection.subscribed.is_set, "the subscription")
            messages = counters(prefix)
            infos = [
                sender.publish(
                    topic,
                    payload,
                    qos=0 if n % 5 == 4 else 1,
                    properties=props if n % 3 == 0 else None,
                )
                for n, (topic, payload) in enumerate(messages)
            ]
            for info in infos:
                info.wait_for_publish(timeout=30)
            wait_for(lambda: ingest.counts.messages == len(messages), "every message committed")
            acked = sum(1 for n in range(len(messages)) if n % 5 != 4)
            wait_for(lambda: ingest.connection.acks_sent == acked, "every QoS 1 message acked")
    finally:
        sender.disconnect()
        sender.loop_stop()
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    # paho reads a message with properties, and a plain one only when it straddles two reads
    with_properties = [m for n, m in enumerate(messages) if n % 3 == 0 and protocol == "5"]
    assert Counter(with_properties) <= Counter(taken_by_paho)
    assert len(taken_by_paho) - len(with_properties) < (len(messages) - len(with_properties)) / 4


def test_snmp_readings_go_through_the_commit_worker_when_there_is_one(
    tmp_path: Path, mosquitto: servers.Mosquitto, prefix: str
) -> None:
    settings = make_settings(tmp_path, mosquitto, prefix)
    t = 1_738_573_200_000
    readings = [("m001", "energy_wh_total", t + k * 60_000, 1000.0 + k) for k in range(3)]
    with Runtime(settings) as runtime:
        worker = WorkerCommitter(settings, 0.0)
        try:
            sink = StoreSink(runtime, None, threading.Lock(), worker)
            sink.write(readings[:2], [])
            sink.write(readings[2:], [])  # the worker's engine goes on from the first write
            assert sink.stored == 3
        finally:
            worker.close()  # saves the worker's integration state
        assert "m001" in runtime.state.load_integration_states()
    rows = stored_rows(settings.store_path)
    assert [r.value for r in rows] == [1000.0, 1001.0, 1002.0]
    assert energy_wh(rows) == {"m001": 2.0}


@pytest.mark.integration
def test_the_commit_worker_logs_through_the_collectors_loggers(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    publisher: Publisher,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path, mosquitto, prefix)
    with (
        caplog.at_level(logging.WARNING, logger="gronkoll.collector"),
        ingesting(settings, mosquitto, worker=True) as ingest,
    ):
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        publisher.publish_all([(f"{prefix}/m001/energi", "n/a")])
        wait_for(lambda: ingest.counts.quarantined == 1, "the quarantine entry")
        wait_for(
            lambda: any("quarantined a message" in r.getMessage() for r in caplog.records),
            "the worker's warning, here",
        )
    warning = next(r for r in caplog.records if "quarantined a message" in r.getMessage())
    assert warning.name == "gronkoll.collector.messages" and warning.levelno == logging.WARNING
    assert f"{prefix}/m001/energi" in warning.getMessage()


def children() -> set[int]:
    """This process's child processes."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def test_the_commit_worker_is_one_process_and_ends_with_its_work_saved(
    tmp_path: Path, mosquitto: servers.Mosquitto, prefix: str
) -> None:
    # One fresh interpreter and nothing else (multiprocessing's spawn also started a resource
    # tracker, a third interpreter, for the collector's whole life).
    settings = make_settings(tmp_path, mosquitto, prefix)
    before = children()
    with Runtime(settings) as runtime:
        runtime.state  # noqa: B018 (migrated here, as the collector does)
        worker = WorkerCommitter(settings, 0.0)
        try:
            assert children() - before == {worker.process.pid}
            cmdline = Path(f"/proc/{worker.process.pid}/cmdline").read_bytes()
            assert b"gronkoll.collector.worker_process" in cmdline
            assert worker.ingest([("m001", "energy_wh_total", 1_738_573_200_000, 1.0)], []) == 1
        finally:
            worker.close()
        assert not worker.process.is_alive() and worker.process.exitcode == 0
    assert children() == before


def test_a_runtime_on_a_migrated_state_database_can_open_it_without_alembic(
    tmp_path: Path, mosquitto: servers.Mosquitto, prefix: str
) -> None:
    # The commit worker's case: the collector migrated the database, the worker only uses it.
    settings = make_settings(tmp_path, mosquitto, prefix)
    with Runtime(settings) as runtime:
        runtime.state  # noqa: B018 (migrated)
    code = (
        "import pickle, sys\n"
        "from gronkoll.runtime import Runtime\n"
        "with Runtime(pickle.load(sys.stdin.buffer), migrate_state=False) as runtime:\n"
        "    print(len(runtime.state.device_status()), 'alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(settings), capture_output=True, check=True
    )
    assert done.stdout.split() == [b"0", b"False"]


@pytest.mark.integration
def test_a_cut_connection_mid_stream_is_made_again_and_nothing_is_lost(
    tmp_path: Path, mosquitto: servers.Mosquitto, publisher: Publisher, prefix: str
) -> None:
    spy = AckSpy()
    settings = make_settings(tmp_path, mosquitto, prefix, max_inflight=20)
    with ingesting(settings, mosquitto, spy.factory) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription")
        first = publisher.publish_all(counters(prefix, range(5)))
        wait_for(lambda: ingest.counts.messages >= first // 2, "half the first part")
        spy.cut()
        wait_for(lambda: ingest.connection.connects == 2, "the reconnect")
        total = first + publisher.publish_all(counters(prefix, range(5, PER_DEVICE)))
        wait_for(lambda: ingest.connection.acks_sent >= total, "every message acknowledged")
    rows = stored_rows(settings.store_path)
    assert_each_once(rows, expected())
    assert energy_wh(rows) == every_device(PER_DEVICE - 1)


@pytest.mark.integration
def test_collectors_in_a_shared_group_split_the_stream_and_store_each_message_once(
    tmp_path: Path, mosquitto: servers.Mosquitto, publisher: Publisher, prefix: str
) -> None:
    group = {"shared_group": prefix}
    one = make_settings(tmp_path / "one", mosquitto, prefix, client_id=f"{prefix}-1", **group)
    two = make_settings(tmp_path / "two", mosquitto, prefix, client_id=f"{prefix}-2", **group)
    with ingesting(one, mosquitto) as first, ingesting(two, mosquitto) as second:
        assert first.connection.filters == [f"$share/{prefix}/{prefix}/+/energi"]
        wait_for(lambda: first.connection.subscribed.is_set(), "the first subscription")
        wait_for(lambda: second.connection.subscribed.is_set(), "the second subscription")
        total = publisher.publish_all(counters(prefix))
        wait_for(
            lambda: first.counts.messages + second.counts.messages == total,
            "every message committed by one collector or the other",
        )
        assert first.counts.messages > 0 and second.counts.messages > 0
    stored = Counter(
        (r.device, r.value) for r in stored_rows(one.store_path) + stored_rows(two.store_path)
    )
    assert stored == Counter(
        (device, value) for (device, _), values in expected().items() for value in values
    )


# -- starting: credentials, TLS, an absent broker ----------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_wrong_password_is_one_clear_error_that_never_shows_the_password(
    tmp_path: Path, mosquitto: servers.Mosquitto, prefix: str, protocol: str
) -> None:
    settings = make_settings(
        tmp_path,
        mosquitto,
        prefix,
        port=mosquitto.auth_port,
        username=mosquitto.username,
        password="not-the-password",
        protocol=protocol,
    )
    with ingesting(settings, mosquitto) as ingest:
        wait_for(lambda: ingest.fatal is not None, "the refusal")
        assert ingest.connection.connects == 0
    error = ingest.fatal
    assert isinstance(error, MqttRefused)
    text = str(error)
    assert f"127.0.0.1:{mosquitto.auth_port}" in text and f"user '{mosquitto.username}'" in text
    assert "not-the-password" not in text and mosquitto.password not in text


@pytest.mark.integration
@pytest.mark.parametrize("listener", ["tls-password", "tls-client-certificate"])
def test_tls_with_the_test_ca_carries_messages(
    tmp_path: Path, mosquitto: servers.Mosquitto, publisher: Publisher, prefix: str, listener: str
) -> None:
    tls = mosquitto.tls
    if listener == "tls-password":
        extra: dict[str, Any] = {
            "port": mosquitto.tls_port,
            "username": mosquitto.username,
            "password": mosquitto.password,
            "tls": {"ca_file": str(tls.ca_file)},
        }
    else:
        extra = {
            "port": mosquitto.mtls_port,
            "tls": {
                "ca_file": str(tls.ca_file),
                "cert_file": str(tls.client_cert),
                "key_file": str(tls.client_key),
            },
        }
    settings = make_settings(tmp_path, mosquitto, prefix, **extra)
    with ingesting(settings, mosquitto) as ingest:
        wait_for(ingest.connection.subscribed.is_set, "the subscription over TLS")
        total = publisher.publish_all(counters(prefix, range(2)))
        wait_for(lambda: ingest.connection.acks_sent == total, "the messages over TLS")
    assert_each_once(stored_rows(settings.store_path), expected(range(2)))


@pytest.mark.integration
# paho 2.2 does not close the socket when the TLS handshake fails (Client._ssl_wrap_socket);
# it is closed when collected, with a ResourceWarning that is not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_server_certificate_the_ca_does_not_vouch_for_stops_at_start(
    tmp_path: Path, mosquitto: servers.Mosquitto, prefix: str
) -> None:
    other = servers.make_tls_files(tmp_path / "other-ca")
    settings = make_settings(
        tmp_path,
        mosquitto,
        prefix,
        port=mosquitto.tls_port,
        username=mosquitto.username,
        password=mosquitto.password,
        tls={"ca_file": str(other.ca_file)},
    )
    with ingesting(settings, mosquitto) as ingest:
        wait_for(lambda: ingest.fatal is not None, "the TLS refusal")
    text = str(ingest.fatal)
    assert f"127.0.0.1:{mosquitto.tls_port}" in text and "certificate" in text
    assert str(other.ca_file) in text and mosquitto.password not in text


@pytest.mark.integration
def test_a_broker_away_at_start_is_retried_and_logged_once(
    tmp_path: Path,
    mosquitto: servers.Mosquitto,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path, mosquitto, prefix)
    caplog.set_level(logging.INFO, logger="gronkoll.collector")
    mosquitto.stop()
    try:
        with ingesting(settings, mosquitto) as ingest:
            wait_for(lambda: ingest.connection.outage.attempts >= 3, "three failed attempts")
            assert ingest.fatal is None and not ingest.connection.live
            mosquitto.start()
            wait_for(ingest.connection.subscribed.is_set, "the subscription, once it is back")
            publisher = Publisher(mosquitto.port)
            total = publisher.publish_all(counters(prefix, range(2)))
            publisher.close()
            wait_for(lambda: ingest.connection.acks_sent >= total, "the messages")
    finally:
        mosquitto.start()
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    address = f"MQTT broker 127.0.0.1:{mosquitto.port}"
    assert [m for m in logged if "cannot connect" in m] == [
        f"{address}: cannot connect: Connection refused; retrying, at most every 1 s"
    ]
    assert len([m for m in logged if m.startswith(f"{address}: connected again after")]) == 1
    assert_each_once(stored_rows(settings.store_path), expected(range(2)))


# -- the journal and the inbox -----------------------------------------------------------------
@pytest.mark.integration
def test_the_journal_keeps_each_sessions_newest_keys_and_their_first_receive_time(
    state_db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt_journal, "KEEP_KEYS", 100)
    monkeypatch.setattr(mqtt_journal, "PRUNE_EVERY", 50)
    session = "gronkoll-collector@127.0.0.1:1883"
    journal = DeliveryJournal(state_db, session)
    key = message_key(7, "shellies/p1/relay/0/energy", b"360000")
    assert key != message_key(8, "shellies/p1/relay/0/energy", b"360000")  # packet id counts
    journal.record([(key, 1_000)])
    journal.record([(key, 2_000)])  # the same key again later: the newest is the one used
    assert journal.lookup([key, 12345]) == {key: 2_000}
    other = DeliveryJournal(state_db, "collector-2@127.0.0.1:1883")
    other.record([(key, 5_000)])
    assert DeliveryJournal(state_db, session).lookup([key]) == {key: 2_000}  # read back at start
    for n in range(3):
        journal.record([(n * 1000 + i, i) for i in range(60)])
    assert journal.lookup([key]) == {}  # more than 100 newer keys: pruned
    assert DeliveryJournal(state_db, session).lookup([key]) == {}
    assert 100 <= journal.keys() < 100 + 50 + 60
    journal.forget()
    assert journal.keys() == 0 and DeliveryJournal(state_db, session).lookup([0]) == {}
    assert other.keys() == 1 and other.lookup([key]) == {key: 5_000}  # its own session


@pytest.mark.integration
def test_the_journal_writes_a_batch_of_many_keys_in_order(
    state_db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 250 keys: three INSERTs of ROWS_PER_STATEMENT rows and 58 rows one by one, in order
    monkeypatch.setattr(mqtt_journal, "KEEP_KEYS", 120)
    assert multirow_insert.ROWS_PER_STATEMENT == 64
    journal = DeliveryJournal(state_db, "gronkoll-collector@127.0.0.1:1883")
    keys = [
        (message_key(i % 65_535 + 1, f"tele/p{i}/SENSOR", b"{}"), 1_000 + i) for i in range(250)
    ]
    journal.record(keys)
    assert journal.keys() == 250
    again = DeliveryJournal(state_db, "gronkoll-collector@127.0.0.1:1883")  # the newest 120
    assert again.lookup(k for k, _ in keys) == dict(keys[130:])
    assert journal.lookup(k for k, _ in keys) == dict(keys[130:])


@pytest.mark.integration
def test_device_activity_adds_up_across_saves(state_db: StateDB) -> None:
    journal = DeliveryJournal(state_db, "gronkoll-collector@127.0.0.1:1883")
    journal.save_activity({"p1": Activity(3, 1, 1_738_573_200_000, "tele/p1/SENSOR")})
    journal.save_activity({"p1": Activity(2, 0, 1_738_573_260_000, "tele/p1/SENSOR")})
    row = state_db.device_status()["p1"]
    assert (row.mqtt_messages, row.mqtt_quarantined) == (5, 1)
    assert row.mqtt_last_message_at is not None
    assert row.mqtt_last_message_at.timestamp() == 1_738_573_260


def test_the_inbox_holds_at_most_its_window_until_acknowledged() -> None:
    inbox = Inbox(2)
    one = Delivery("t", b"1", 0, mid=1, qos=1, dup=False, generation=1)
    assert inbox.put(one) and inbox.put(one)
    third = threading.Thread(target=inbox.put, args=(one,))
    third.start()
    assert len(inbox.take(10, timeout=0)) == 2
    third.join(0.2)
    assert third.is_alive()  # taken but not acknowledged: the window is still full
    inbox.done(2)
    third.join(5)
    assert not third.is_alive() and len(inbox.take(10, timeout=0)) == 1
    inbox.close()
    assert not inbox.put(one)


def test_the_inbox_lingers_for_a_fuller_batch_but_no_longer_than_told() -> None:
    inbox = Inbox(100)
    one = Delivery("t", b"1", 0, mid=1, qos=1, dup=False, generation=1)

    def trickle() -> None:
        for _ in range(9):
            time.sleep(0.01)  # a message every 10 ms, as a live stream sends them
            inbox.put(one)

    inbox.put(one)
    sender = threading.Thread(target=trickle)
    sender.start()
    batch = inbox.take(10, timeout=1, linger=5)  # returns once 10 wait, long before 5 s
    sender.join(5)
    assert len(batch) == 10
    inbox.put(one)
    started = time.monotonic()
    assert len(inbox.take(10, timeout=1, linger=0.05)) == 1  # nothing more came
    assert 0.05 <= time.monotonic() - started < 1
    full = Inbox(3)
    for _ in range(3):
        full.put(one)
    started = time.monotonic()
    assert len(full.take(10, timeout=1, linger=5)) == 3  # no slot free: nothing more can come
    assert time.monotonic() - started < 1


def test_subscriptions_skip_filters_another_one_covers() -> None:
    assert covers("tele/+/SENSOR", "tele/plug-1/SENSOR")
    assert covers("zigbee2mqtt/#", "zigbee2mqtt/kontor/skrivare-2")
    assert covers("a/#", "a") and covers("#", "a/+/b") and not covers("#", "$SYS/broker")
    assert not covers("a/+", "a/#") and not covers("tele/x/SENSOR", "tele/+/SENSOR")
    filters = ["tele/+/SENSOR", "zigbee2mqtt/#", "zigbee2mqtt/kontor/skrivare-2", "rum/1/effekt"]
    assert subscription_filters(filters) == ["tele/+/SENSOR", "zigbee2mqtt/#", "rum/1/effekt"]
    assert subscription_filters(["a/+"], "gk") == ["$share/gk/a/+"]
