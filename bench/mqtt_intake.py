"""Benchmark: the collector's MQTT network thread per message, beside paho-mqtt's own reading.

The same stream of PUBLISH packets (QoS 1, the bench's Tasmota topics and payloads, MQTT 5
with no properties and MQTT 3.1.1) is written into one end of a local socket pair; the other
end is read by

* a plain paho-mqtt 2 client (`loop_read`, `on_message`), then each message acknowledged with
  `ack()` as a manual-ack subscriber does: the baseline;
* `CollectorClient` (collector/mqtt_client.py): its intake takes each PUBLISH straight from
  its 64 KiB reads; the acknowledgements of every 500 messages go out with one `ack_many`.

Printed: CPU time of the reading thread per message (thread_time, read and acknowledge),
and the ratio. The writing end runs in another thread and is not counted. No broker is
involved: this isolates the client's own cost; bench/mqtt_ingest.py measures the whole path.

    .venv/bin/python bench/mqtt_intake.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion

from gronkoll.collector.mqtt_client import CollectorClient

BATCH = 500  # acknowledgements per ack_many, about a live commit's batch
PAYLOAD = (
    b'{"Time":"2025-02-03T09:00:00","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00",'
    b'"Total":87.512,"Yesterday":1.2,"Today":0.402,"Period":6,"Power":45,"ApparentPower":50,'
    b'"ReactivePower":21,"Factor":0.9,"Voltage":230,"Current":0.21}}'
)


def publish_packet(topic: bytes, payload: bytes, mid: int, v5: bool) -> bytes:
    """A QoS 1 PUBLISH (MQTT 3.1.1 / 5.0 section 3.3); in MQTT 5 with an empty property list."""
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid)
    body += (b"\x00" if v5 else b"") + payload
    size, length = len(body), bytearray()
    while True:
        byte, size = size % 128, size // 128
        length.append(byte | (0x80 if size else 0))
        if not size:
            break
    return b"\x32" + bytes(length) + body


def stream(n: int, v5: bool) -> bytes:
    return b"".join(
        publish_packet(b"tele/tasmot-%05d/SENSOR" % (i % 10_000), PAYLOAD, i % 65_535 + 1, v5)
        for i in range(n)
    )


def read_all(client: paho.Client, data: bytes, n: int, count: Callable[[], int]) -> float:
    """CPU seconds of this thread to read n messages of data through client."""
    mine, theirs = socket.socketpair()
    mine.setblocking(False)
    client._sock = mine  # as paho sets it after connecting
    writer = threading.Thread(target=theirs.sendall, args=(data,))
    writer.start()
    drain = threading.Thread(target=_drain, args=(theirs,), daemon=True)  # the PUBACKs
    drain.start()
    start = time.thread_time()
    while count() < n:
        client.loop_read()
    client.loop_write()
    used = time.thread_time() - start
    writer.join()
    mine.close()
    theirs.close()
    return used


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65_536):
            pass
    except OSError:
        return


def paho_client(data: bytes, n: int, v5: bool) -> float:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=_protocol(v5), manual_ack=True)
    got = [0]

    def on_message(c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        got[0] += 1
        c.ack(m.mid, m.qos)

    client.on_message = on_message
    return read_all(client, data, n, lambda: got[0])


def collector_client(data: bytes, n: int, v5: bool) -> float:
    client = CollectorClient(CallbackAPIVersion.VERSION2, protocol=_protocol(v5), manual_ack=True)
    mids: list[int] = []
    got = [0]

    def intake(topic: bytes, payload: bytes, mid: int, qos: int, dup: bool) -> None:
        got[0] += 1
        mids.append(mid)
        if len(mids) >= BATCH:
            client.ack_many(mids)
            mids.clear()

    client.intake = intake
    # a packet that straddles two reads is read by paho and comes as on_message
    client.on_message = lambda c, u, m: intake(m._topic, m.payload, m.mid, m.qos, m.dup)
    return read_all(client, data, n, lambda: got[0])


def _protocol(v5: bool) -> paho.MQTTProtocolVersion:
    return paho.MQTTv5 if v5 else paho.MQTTv311


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is shown")
    args = parser.parse_args()
    n, runs = args.messages, args.runs
    print(
        f"# {n:,} QoS 1 PUBLISH packets of {len(PAYLOAD)} payload bytes over a socket pair; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, paho-mqtt {paho_version}, "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    print(f"{'protocol':10} {'paho, µs/msg':>14} {'Gronkoll, µs/msg':>18} {'paho / Gronkoll':>16}")
    for v5 in (True, False):
        data = stream(n, v5)
        base = sorted(paho_client(data, n, v5) for _ in range(runs))[runs // 2] / n * 1e6
        ours = sorted(collector_client(data, n, v5) for _ in range(runs))[runs // 2] / n * 1e6
        name = "MQTT 5" if v5 else "MQTT 3.1.1"
        print(f"{name:10} {base:14.1f} {ours:18.1f} {base / ours:15.1f}x")
    print(
        "# figures: this run, this machine; CPU time of the reading thread (thread_time), "
        f"median of {runs} runs, acknowledgements included."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
