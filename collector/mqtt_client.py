"""The collector's paho-mqtt client: reads in large chunks, takes PUBLISH packets straight from
them, and writes a batch's acknowledgements together.

paho-mqtt 2 spends most of a small QoS 1 message's time in machinery that a collector does
not need: one ``recv`` per byte of a packet's header, a dict of read state per packet, an MQTT
5 `Properties` object built (27 names, 27 types) for every PUBLISH even when it carries none,
an `MQTTMessage`, its callback dispatch, and one ``send`` per PUBACK. On a stream of small
messages that was about three quarters of the network thread's time. `CollectorClient`
keeps paho for everything else (connecting, TLS, keepalive, subscribing, reconnecting,
disconnecting) and changes three things:

* **Read ahead**: paho's socket reads are answered from a buffer filled by one ``recv`` of up
  to READ_AHEAD bytes. Bytes read ahead are not in the socket any more, so a select() on it
  does not see them: the network loop asks `buffered()` before it waits.
* **Intake**: a PUBLISH at QoS 0 or 1 that lies whole in the buffer and carries no MQTT 5
  properties is parsed here and handed to ``intake(topic, payload, mid, qos, dup)``. Its
  layout is the same in both protocol versions (MQTT 3.1.1 section 3.3, MQTT 5.0 section 3.3):
  a fixed header byte (type 3, DUP bit 3, QoS bits 2-1, RETAIN bit 0), the remaining length
  (a variable byte integer, at most four bytes), the topic (two-byte length, UTF-8), the packet
  id (two bytes, QoS 1 and 2 only), in MQTT 5 the properties (a variable byte integer length,
  0 when there are none), then the payload. Anything else (other packet types, QoS 2,
  properties such as a topic alias, an empty topic, a packet still arriving) is read by paho
  itself, which calls ``on_message`` as usual.
* **Acknowledgements together**: `ack_many` queues the PUBACKs (MQTT 3.1.1 section 3.4, the
  same four bytes in MQTT 5 when the reason is success) of a committed batch as one write.

It overrides paho's private ``_sock_recv`` and ``_packet_read`` and uses ``_packet_queue`` and
``_in_packet``, the same in paho-mqtt 2.1 and 2.2 (pyproject.toml pins ``>=2.1,<2.3``); the MQTT
tests against a real Mosquitto go through every one of them. A new connection starts with an
empty buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

#: Bytes asked of the socket per read.
READ_AHEAD = 65_536
#: A PUBACK: type 4, remaining length 2, the packet id.
_PUBACK = struct.Struct("!BBH")
_PUBLISH = 0x30
_PUBACK_TYPE = 0x40

#: intake(topic bytes, payload, packet id, QoS, DUP flag)
Intake = Callable[[bytes, bytes, int, int, bool], None]


class CollectorClient(paho.Client):
    """paho's client with read-ahead, its own PUBLISH intake and batched PUBACKs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_pos = 0
        self._ahead_sock: object = None
        #: Where PUBLISH packets read here go; None: every packet through paho's on_message.
        self.intake: Intake | None = None

    def buffered(self) -> int:
        """Bytes read from the socket and not yet handled."""
        if self._sock is not self._ahead_sock:
            return 0
        return len(self._ahead) - self._ahead_pos

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages by packet id, in one write."""
        data = b"".join([_PUBACK.pack(_PUBACK_TYPE, 2, mid) for mid in mids])
        if data:
            self._packet_queue(_PUBACK_TYPE, data, 0, 0)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._ahead_sock:  # a new connection: nothing of the old one
            self._ahead, self._ahead_pos, self._ahead_sock = b"", 0, self._sock
        pos = self._ahead_pos
        if pos >= len(self._ahead):
            # paho's own read: its errors (would block, connection lost) are paho's to handle
            data = super()._sock_recv(max(bufsize, READ_AHEAD))
            if len(data) <= bufsize:
                return data  # all of it is asked for (or the end of the stream, b"")
            self._ahead, pos = data, 0
        end = pos + bufsize
        self._ahead_pos = end
        return self._ahead[pos:end]

    def _packet_read(self) -> MQTTErrorCode:
        if self.intake is not None and self._in_packet["command"] == 0 and self._take_publish():
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _take_publish(self) -> bool:
        """Hand over a whole, plain PUBLISH waiting at the buffer's start; False if not one."""
        if self._sock is not self._ahead_sock:
            return False
        buf, pos = self._ahead, self._ahead_pos
        size = len(buf)
        if pos >= size:
            return False
        header = buf[pos]
        qos = (header >> 1) & 3
        if header & 0xF0 != _PUBLISH or qos > 1:
            return False
        length, shift, at = 0, 0, pos + 1
        while True:  # the remaining length
            if at >= size or shift > 21:
                return False  # still arriving (or malformed: paho says so)
            byte = buf[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        end = at + length
        if end > size or length < 2:
            return False
        topic_end = at + 2 + (buf[at] << 8 | buf[at + 1])
        body = topic_end + 2 if qos else topic_end
        if topic_end == at + 2 or body > end:
            return False  # an empty topic or a short packet: paho judges it
        if self._protocol == paho.MQTTv5:
            if body >= end or buf[body] != 0:
                return False  # properties to read (a topic alias, user properties...)
            body += 1
        mid = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
        self._ahead_pos = end
        self.intake(buf[at + 2 : topic_end], buf[body:end], mid, qos, bool(header & 0x08))  # type: ignore[misc]
        return True
