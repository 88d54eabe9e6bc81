"""The live MQTT connection: a persistent session, kept up, acknowledgements on request.

One `MqttConnection` keeps one paho client connected. It subscribes at QoS 1 on a persistent
session (MQTT 5: ``clean_start`` false and a session expiry; 3.1.1: ``clean_session`` false),
hands every message to a callback as a `Delivery`, and acknowledges a delivery only when asked
(paho's ``manual_ack``), which the ingestion does once the message's batch is committed.

Threads: one network thread owns the paho client and is the only one that uses it: it
connects, reconnects with capped backoff (1 s doubling to ``reconnect_max_s``), logs an
outage once when it starts and once when it ends, runs paho's read/write/keepalive loop
(``loop_read``, ``loop_write``, ``loop_misc`` around a select) and the callbacks, and sends
the acks other threads hand it (`ack()` queues them and wakes it). The callback that takes a
message may wait while the in-flight window is full: then the socket fills and the broker
holds the rest.

A delivery is acknowledged only on the connection it came on. Every successful connect
starts a new *generation*; a delivery remembers its generation, and an ack for an older one
is not sent. When we connect again the broker resends what is unacknowledged, flagged DUP and
with the same packet id, and once that resend is acknowledged the packet id may carry a new
message, which a late ack of the old delivery would acknowledge unread. Dropping the
connection is also how a batch the store refused is handed back: `reconnect()` ends it, and
the broker sends everything unacknowledged again (MQTT 3.1.1 and MQTT 5, section 4.4).

At start, a broker that refuses our credentials (or client id, or protocol) or a server
certificate the CA does not vouch for is an error that stops the collector, naming host:port
and the user. A broker that cannot be reached is retried for as long as it takes (Telegraf's
startup-error behaviour); so is everything once a first connection has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gronkoll.collector.mqtt import (
    FIRST_BACKOFF_S,
    ClientFactory,
    Delivery,
    MqttRefused,
    Outage,
    new_client,
)
from gronkoll.collector.mqtt_topics import subscription_filters
from gronkoll.errors import ConfigError, GronkollError
from gronkoll.settings import Settings

log = logging.getLogger(__name__)

#: MQTT 5 Receive Maximum is a 16-bit number: at most this many unacknowledged messages.
RECEIVE_MAXIMUM_CAP = 65_535
#: The network loop looks at keepalive at least this often (seconds).
LOOP_S = 1.0
#: Packets read in a row while they keep coming, before looking at acks, writes and the clock.
READ_BURST = 64
MQTT_ERR_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
#: Topics whose last receive time is remembered (beyond this, forgotten all at once).
MAX_TOPICS_TIMED = 200_000
#: CONNACK reasons that a retry will not change: wrong credentials, client id, protocol.
FATAL_REASONS = frozenset(
    {
        "Unsupported protocol version",
        "Client identifier not valid",
        "Bad user name or password",
        "Not authorized",
        "Banned",
        "Bad authentication method",
    }
)


class MqttConnection:
    """Keeps one paho client connected and subscribed; acknowledges deliveries on request."""

    def __init__(
        self,
        settings: Settings,
        topic_filters: Sequence[str],
        on_delivery: Callable[[Delivery], object],
        *,
        client_factory: ClientFactory = new_client,
        on_fatal: Callable[[GronkollError], object] | None = None,
        on_session: Callable[[bool], object] | None = None,
    ) -> None:
        if settings.mqtt is None:
            raise ConfigError(f"{settings.source}: mqtt: no mqtt section")
        self.settings = settings
        self.mqtt = settings.mqtt
        self.address = f"{self.mqtt.host}:{self.mqtt.port}"
        self.filters = subscription_filters(topic_filters, self.mqtt.shared_group)
        self._on_delivery = on_delivery  # may wait: the in-flight window is full
        self._on_fatal = on_fatal
        self._on_session = on_session
        self.client = client_factory(settings)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_subscribe = self._subscribed
        self.client.intake = self._intake  # plain PUBLISH packets come straight
        self.outage = Outage(f"MQTT broker {self.address}")
        self.fatal: GronkollError | None = None
        self.ever_connected = False
        self.subscribed = threading.Event()  # set once the first SUBACK is in
        self.settled = threading.Event()  # subscribed, or stopped for good by a fatal error
        self.connects = 0
        self.acks_sent = 0
        # Written by the network thread only; other threads hand work over through these.
        self._generation = 0
        self._live = False
        self._refused: ReasonCode | None = None  # this attempt's CONNACK said no
        self._up = False  # this attempt got a CONNACK that said yes
        self._asked = False  # we ended this connection (stop, reconnect)
        self._lost = ""  # why the broker's side ended it
        self._acks: deque[Delivery] = deque()
        self._received = 0  # messages taken on any connection, to tell when a read found one
        self._topic_ms: dict[str, int] = {}  # each topic's last receive time
        self._drop = threading.Event()
        self._stopping = threading.Event()
        self._hold_s = 0.0  # the ingestion asked us to wait this long before reconnecting
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None

    # -- other threads' side -------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; returns at once."""
        self._thread = threading.Thread(target=self._run, name="gronkoll-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Disconnect (the session stays with the broker) and wait for the network thread."""
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
        self._wake_r.close()
        self._wake_w.close()

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge deliveries; only those of the live connection reach the broker."""
        self._acks.extend(deliveries)
        self._wake()

    def reconnect(self, hold_s: float) -> None:
        """Drop the connection, connect again after hold_s: the broker resends what is unacked."""
        self._hold_s = max(self._hold_s, hold_s)
        self._drop.set()
        self._wake()

    @property
    def live(self) -> bool:
        """Whether we are connected now."""
        return self._live

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # a byte is already waiting
            self._wake_w.send(b"\0")

    # -- the network thread: the only one that uses the paho client ----------------------
    def _run(self) -> None:
        backoff = min(FIRST_BACKOFF_S, self.mqtt.reconnect_max_s)
        while not self._stopping.is_set():
            self._drop.clear()
            error = self._connect_once()
            if error is None:
                self._serve()
                error = self._after_connection()
                if error is None:  # we were connected: start the backoff again
                    backoff = min(FIRST_BACKOFF_S, self.mqtt.reconnect_max_s)
            if self._stopping.is_set() or self.fatal is not None:
                break
            wait = backoff
            if error is not None:
                self.outage.failed(
                    error, f"retrying, at most every {self.mqtt.reconnect_max_s:g} s"
                )
                backoff = min(backoff * 2, self.mqtt.reconnect_max_s)
            wait, self._hold_s = max(wait, self._hold_s), 0.0
            self._stopping.wait(wait)

    def _serve(self) -> None:
        """Run one connection until it ends: read, write, keep alive, ack, end on request."""
        client = self.client
        while True:
            if self._stopping.is_set() or self._drop.is_set():
                self._end()
                return
            self._send_acks()
            sock = client.socket()
            if sock is None:
                return
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            pending += client.buffered()  # bytes it read ahead of paho
            writes = [sock] if client.want_write() else []
            try:
                readable, writable, _ = select.select(
                    [sock, self._wake_r], writes, [], 0 if pending else LOOP_S
                )
            except (OSError, ValueError):  # the socket went away under us
                readable, writable = [sock], []
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
            if (pending or sock in readable) and not self._read_burst(client):
                return  # paho closed the socket and called on_disconnect
            if writable and client.loop_write() != MQTT_ERR_SUCCESS:
                return
            if client.loop_misc() != MQTT_ERR_SUCCESS:  # keepalive: ping, or give up
                return

    def _read_burst(self, client: paho.Client) -> bool:
        """Read packets while messages keep coming (paho reads one per call); False at the end.

        A backlog arrives as a stream: reading it without a select() and paho's housekeeping
        between every two messages saves their cost per message.
        """
        for _ in range(READ_BURST):
            before = self._received
            if client.loop_read() != MQTT_ERR_SUCCESS:
                return False
            if self._received == before or self._drop.is_set() or self._acks:
                break  # no message (nothing there, or a PINGRESP), or acks wait to go out
        return True

    def _send_acks(self) -> None:
        generation, client = self._generation, self.client
        mids = []
        while self._acks:
            d = self._acks.popleft()
            if self._live and d.generation == generation:
                if d.qos == 1:
                    mids.append(d.mid)
                elif d.qos == 2:
                    client.ack(d.mid, d.qos)
                    self.acks_sent += 1
        if mids:
            client.ack_many(mids)
            self.acks_sent += len(mids)

    def _end(self) -> None:
        """End the connection ourselves (stop, or the ingestion asked for a reconnect)."""
        self._send_acks()  # what was committed before the request still counts
        self._asked = True
        self._live = False
        if self.client.socket() is not None:
            self.client.disconnect()  # DISCONNECT: the session stays with the broker

    def _connect_once(self) -> str | None:
        """Open the socket and send CONNECT; None when sent, else why not."""
        self._refused, self._up, self._asked, self._lost = None, False, False, ""
        mqtt = self.mqtt
        try:
            if mqtt.protocol == "5":
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = mqtt.session_expiry_s
                props.ReceiveMaximum = min(mqtt.max_inflight, RECEIVE_MAXIMUM_CAP)
                self.client.connect(
                    mqtt.host, mqtt.port, mqtt.keepalive_s, clean_start=False, properties=props
                )
            else:
                self.client.connect(mqtt.host, mqtt.port, mqtt.keepalive_s)
        except ssl.SSLCertVerificationError as err:
            text = f"TLS: the broker's certificate is not accepted: {err.verify_message}"
            if not self.ever_connected:
                self._fail(MqttRefused(f"MQTT broker {self.address}: {text} ({self._ca_text()})"))
            return text
        except (OSError, ssl.SSLError) as err:  # refused, unreachable, timeout, TLS
            return _os_error_text(err)
        return None

    def _after_connection(self) -> str | None:
        """Why the connection ended, as a failure to retry after; None when it had been up."""
        refused = self._refused
        if refused is not None:
            if refused.getName() in FATAL_REASONS and not self.ever_connected:
                self._fail(MqttRefused(self._refusal_text(refused)))
            return f"refused the connection: {refused}"
        if not self._up:
            return "the connection closed before the broker answered"
        if not self._asked:
            self.outage.failed(f"lost the connection: {self._lost}", "reconnecting")
        return None

    def _fail(self, error: GronkollError) -> None:
        self.fatal = error
        self.settled.set()
        if self._on_fatal is not None:
            self._on_fatal(error)

    def _refusal_text(self, reason: ReasonCode) -> str:
        who = f"user {self.mqtt.username!r}" if self.mqtt.username else "an anonymous client"
        hint = {
            "Bad user name or password": "check mqtt.username and mqtt.password",
            "Not authorized": "check mqtt.username and mqtt.password, and the broker's ACL",
            "Client identifier not valid": "check mqtt.client_id",
            "Unsupported protocol version": "try mqtt.protocol 3.1.1",
        }.get(reason.getName(), "see the broker's log")
        return (
            f"MQTT broker {self.address} refused {who} (client id {self.mqtt.client_id!r}): "
            f"{reason}; {hint} in {self.settings.source}"
        )

    def _ca_text(self) -> str:
        tls = self.mqtt.tls
        if tls is not None and tls.ca_file:
            return f"mqtt.tls.ca_file {self.settings.resolve(tls.ca_file)}"
        return "the system's CAs; set mqtt.tls.ca_file"

    # -- paho's network thread -----------------------------------------------------------
    def _connected(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = reason
            return
        self._generation += 1
        self._live = self._up = True
        first = not self.ever_connected
        self.ever_connected = True
        self.connects += 1
        if self._on_session is not None:
            self._on_session(flags.session_present)
        if first:
            log.info(
                "connected to MQTT broker %s (MQTT %s, client id %s, %s session)",
                self.address,
                self.mqtt.protocol,
                self.mqtt.client_id,
                "resumed" if flags.session_present else "new",
            )
        elif not flags.session_present:
            log.warning(
                "MQTT broker %s: it no longer had our session; messages published while we "
                "were away and not kept by the broker are lost",
                self.address,
            )
        self.outage.ended("connected again")
        self._subscribe(client, known=flags.session_present and not first)

    def _subscribe(self, client: paho.Client, *, known: bool) -> None:
        """Subscribe at QoS 1; known: the broker kept our session and its subscriptions."""
        if not self.filters or (known and self.mqtt.protocol != "5"):
            self.subscribed.set()  # 3.1.1 cannot ask for no retained messages: do not resend
            self.settled.set()
            return
        # MQTT 5: subscribing again must not fetch the retained messages again.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        if self.mqtt.protocol == "5":
            client.subscribe([(f, options) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])

    def _subscribed(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for topic, reason in zip(self.filters, reasons, strict=False):
            if reason.is_failure:
                log.error(
                    "MQTT broker %s refused the subscription %r: %s", self.address, topic, reason
                )
            elif reason.value == 0:
                log.warning(
                    "MQTT broker %s granted %r only QoS 0: its messages can be lost",
                    self.address,
                    topic,
                )
        if not self.subscribed.is_set():
            log.info("subscribed at QoS 1 to %s", ", ".join(self.filters))
        self.subscribed.set()
        self.settled.set()

    def _disconnected(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._live = False
        if flags.is_disconnect_packet_from_server:
            self._lost = f"the broker disconnected us: {reason}"
        else:
            self._lost = "the broker closed the connection or stopped answering"

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """paho's on_message, for the packets CollectorClient leaves to paho."""
        self._intake(message._topic, message.payload, message.mid, message.qos, bool(message.dup))

    def _intake(
        self, raw_topic: bytes, payload: bytes | bytearray, mid: int, qos: int, dup: bool
    ) -> None:
        """Take one message in: its receive time, then on to the ingestion."""
        self._received += 1
        try:
            try:
                topic = raw_topic.decode("utf-8")
            except UnicodeDecodeError:  # brokers refuse these; never stop the stream for one
                topic = raw_topic.decode("utf-8", errors="replace")
            # The receive time, one ms past the topic's last if need be: a burst of one
            # topic's messages (a backlog the broker kept) must not share a reading time.
            now_ms = time.time_ns() // 1_000_000
            last_ms = self._topic_ms.get(topic, 0)
            received_ms = now_ms if now_ms > last_ms else last_ms + 1
            if len(self._topic_ms) >= MAX_TOPICS_TIMED:
                self._topic_ms.clear()
            self._topic_ms[topic] = received_ms
            self._on_delivery(
                Delivery(topic, bytes(payload), received_ms, mid, qos, dup, self._generation)
            )
        except Exception:  # paho's thread must go on: this message stays unacknowledged
            log.exception("could not take an MQTT message on %r", raw_topic)


def _os_error_text(err: OSError | ssl.SSLError) -> str:
    """A connection error for the log: the reason, not a traceback."""
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return f"cannot connect: {text or type(err).__name__}"
