"""A QoS 1 publisher for benchmarks that is not the bottleneck: MQTT 3.1.1 over a plain socket.

A paho-mqtt publisher builds, sends and tracks each message in Python and tops out near
6,000 messages/s here, below what the broker and a subscriber can take. This one encodes every
PUBLISH packet up front (fixed header, topic, packet id, payload; MQTT 3.1.1 sections 2.2,
3.3 and 3.4), writes them in chunks of thousands per ``sendall``, and keeps a window of packet
ids in flight: a reader thread frees an id when its PUBACK comes, and an id (1..65535) is used
again only once freed. ``publish()`` returns when the broker has acknowledged every message,
as a QoS 1 publisher's "published" means.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

#: Packet ids in flight at most (of 65,535): enough to keep the broker busy, never all ids.
WINDOW = 20_000
#: Packets written per sendall.
CHUNK = 2_000
CONNACK = 0x20
PUBACK = 0x40


def _varint(n: int) -> bytes:
    """MQTT's Remaining Length: 7 bits a byte, the high bit saying another follows."""
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    """One PUBLISH packet (QoS 0 or 1; a QoS 1 packet carries packet_id)."""
    body = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | qos << 1]) + _varint(len(body)) + body


class FastPublisher:
    """One MQTT 3.1.1 connection (clean session) that publishes at QoS 1 in bulk."""

    def __init__(self, host: str, port: int, client_id: str = "bench-fast-publisher") -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # CONNECT: protocol "MQTT" level 4, clean session, no keepalive (a bench is short).
        body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _utf8(client_id)
        self.sock.sendall(bytes([0x10]) + _varint(len(body)) + body)
        connack = self._read_exact(4)
        if connack[0] != CONNACK or connack[3] != 0:
            raise ConnectionError(f"the broker refused the publisher: CONNACK {connack.hex()}")
        self._cond = threading.Condition()
        self._inflight = bytearray(65_536)  # 1: the id waits for its PUBACK
        self._waiting = 0
        self._next_id = 1
        self._error: str | None = None
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = self.sock.recv(n - len(data))
            if not more:
                raise ConnectionError("the broker closed the publisher's connection")
            data += more
        return data

    def _read_acks(self) -> None:
        """Free each packet id whose PUBACK came (4 bytes each: 0x40 0x02 id)."""
        rest = b""
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("the broker closed the publisher's connection")
                data = rest + data
                whole = len(data) - len(data) % 4
                rest = data[whole:]
                acks = struct.unpack(f"!{whole // 4}I", data[:whole])
                with self._cond:
                    for word in acks:
                        if word >> 24 != PUBACK:
                            raise ConnectionError(f"unexpected packet {word:08x}")
                        self._inflight[word & 0xFFFF] = 0
                    self._waiting -= len(acks)
                    self._cond.notify_all()
        except OSError as err:  # closed at the end, or the broker went away
            with self._cond:
                self._error = str(err)
                self._cond.notify_all()

    def _take_ids(self, n: int) -> list[int]:
        """n free packet ids, waiting until the window and the ids allow."""
        ids: list[int] = []
        with self._cond:
            while self._waiting + n > WINDOW:
                self._check()
                self._cond.wait(1.0)
            while len(ids) < n:
                pid = self._next_id
                while self._inflight[pid]:
                    self._check()
                    self._cond.wait(1.0)
                self._inflight[pid] = 1
                ids.append(pid)
                self._next_id = pid % 65_535 + 1
            self._waiting += n
        return ids

    def _check(self) -> None:
        if self._error is not None:
            raise ConnectionError(f"publisher: {self._error}")

    def publish(self, msgs: list[tuple[str, str]]) -> float:
        """Publish every message at QoS 1, return once all are acknowledged; the start time."""
        heads = [(_utf8(t), p.encode()) for t, p in msgs]  # encoded before the clock starts
        start = time.time()
        for i in range(0, len(heads), CHUNK):
            part = heads[i : i + CHUNK]
            ids = self._take_ids(len(part))
            packets = []
            for (topic, payload), pid in zip(part, ids, strict=True):
                size = len(topic) + 2 + len(payload)
                packets.append(b"\x32" + _varint(size) + topic + pid.to_bytes(2, "big") + payload)
            self.sock.sendall(b"".join(packets))
        with self._cond:
            while self._waiting:
                self._check()
                self._cond.wait(1.0)
        return start

    def publish_qos0(self, topic: str, payload: str) -> None:
        """One message at QoS 0 (a probe that a subscriber is ready)."""
        self.sock.sendall(publish_packet(topic, payload.encode(), 0))

    def close(self) -> None:
        """Send DISCONNECT and close the socket."""
        try:
            self.sock.sendall(b"\xe0\x00")
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=5)
