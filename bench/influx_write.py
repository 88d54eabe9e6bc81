"""Benchmark: 1,000,000 readings written to VictoriaMetrics through Gronkoll's InfluxDB store,
against the same points through a bare influxdb-client batching write, in one run.

* Gronkoll: ``InfluxStore.write()`` of the energy engine's batches (5,000 readings each, as the
  collector makes them): line-protocol encoding, the running hour totals and the write-ahead
  spool (SQLite, synchronous=FULL) in one transaction per batch, and the sender thread posting
  the spooled entries through influxdb-client's WriteApi (v2, synchronous) until the spool
  is empty;
* the baseline: exactly the lines Gronkoll sent, as line-protocol strings in lists of 5,000,
  through influxdb-client's batching ``WriteApi`` (WriteOptions(batch_size=5000,
  flush_interval=1000)), timed until ``close()`` has flushed everything.

Each run gets a fresh VictoriaMetrics (same flags as tests/servers.py), so neither writes into
series the other created. The energy engine's work happens before the clock starts (it is the
same for any store); gzip is the same on both sides (the store's default: on). Target
(issue 5): Gronkoll's points/s at least 80 % of the baseline's.

    .venv/bin/python bench/influx_write.py                   # 1,000,000 readings
    .venv/bin/python bench/influx_write.py --readings 200000 --no-gzip
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gronkoll.devices import attributions, energy_models
from gronkoll.energy import Batch, EnergyEngine
from gronkoll.settings import InfluxdbStore, Settings, parse_settings
from gronkoll.stores.influx_write import Writer, open_writer
from gronkoll.stores.influxdb import InfluxStore

HOST = "127.0.0.1"
STEP_MS = 60_000
BATCH = 5000


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_vm(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    program = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    port = free_port()
    proc = subprocess.Popen(
        [
            program,
            f"-httpListenAddr={HOST}:{port}",
            f"-storageDataPath={folder}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-selfScrapeInterval=0",
            "-loggerLevel=WARN",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("victoria-metrics did not start")


def samples(url: str, metric: str) -> int:
    """How many samples of a metric VictoriaMetrics holds (after a forced flush)."""
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=30).close()  # noqa: S310
    q = urllib.parse.quote(f"sum(count_over_time({metric}[100d]))")
    with urllib.request.urlopen(f"{url}/api/v1/query?query={q}", timeout=60) as r:  # noqa: S310
        result = json.load(r)["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def arrived(url: str, expected: int, timeout_s: float = 30.0) -> int:
    """Power samples found, polled until all are searchable or the deadline passes (a write
    answered 204 may take a moment to show in queries)."""
    deadline = time.monotonic() + timeout_s
    found = samples(url, "reading_power_w")
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = samples(url, "reading_power_w")
    return found


def bench_settings(folder: Path, devices: int, gzip: bool) -> Settings:
    data = {
        "municipality": {"name": "Benchby"},
        "sites": [{"id": f"site{s:02d}", "kind": "server_room"} for s in range(20)],
        "groups": [{"id": "rack-a"}],
        "devices": [
            {
                "id": f"dev{i:04d}",
                "site": f"site{i % 20:02d}",
                "group": "rack-a" if i % 2 else None,
                "kind": "server",
                "rated_power_w": 2000,
            }
            for i in range(devices)
        ],
        "store": {
            "kind": "influxdb",
            "url": "http://127.0.0.1:1",  # replaced per run
            "org": "bench",
            "bucket": "gronkoll",
            "token": "bench-token",
            "gzip": gzip,
        },
    }
    return parse_settings(data, folder / "gronkoll.yaml")


def with_url(config: InfluxdbStore, url: str) -> InfluxdbStore:
    return config.model_copy(update={"url": url})


class RecordingWriter:
    """The real writer, keeping each body it sent (for the baseline to send the same)."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.target = inner.target
        self.bodies: list[bytes] = []

    def send(self, body: bytes) -> None:
        self.inner.send(body)
        if body:
            self.bodies.append(body)

    def close(self) -> None:
        self.inner.close()


def make_batches(store: InfluxStore, settings: Settings, count: int, t0: int) -> list[Batch]:
    """The engine's batches for `count` power readings, every device once a minute."""
    names = [d.id for d in settings.devices]
    engine = EnergyEngine(energy_models(settings), max_gap_s=900, series_id=store.series_id)
    batches, chunk = [], []
    k = 0
    while k * len(names) < count:
        t = t0 + k * STEP_MS
        for i, name in enumerate(names):
            chunk.append((name, "power_w", t, 150.0 + (i * 37 + k * 7) % 400))
            if len(chunk) == BATCH:
                batches.append(engine.process(chunk))
                chunk = []
        k += 1
    if chunk:
        batches.append(engine.process(chunk))
    return batches


def run_gronkoll(
    folder: Path, settings: Settings, count: int, t0: int
) -> tuple[float, int, list[bytes], str]:
    proc, url = start_vm(folder / "vm-gronkoll")
    try:
        assert isinstance(settings.store, InfluxdbStore)
        config = with_url(settings.store, url)
        writer = RecordingWriter(open_writer(config))
        store = InfluxStore(
            config,
            spool_path=folder / "spool.sqlite",
            sites={d.id: d.site for d in settings.devices},
            tz=settings.tz,
            writer=writer,
        )
        batches = make_batches(store, settings, count, t0)
        attribution = attributions(settings)
        store.start()
        start = time.perf_counter()
        for batch in batches:
            store.write(batch, attribution)
        if not store.flush(timeout_s=600):
            raise SystemExit("the spool did not empty within 600 s")
        elapsed = time.perf_counter() - start
        store_counters = store.spool.counters()
        store.close()
        points = sum(body.count(b"\n") + 1 for body in writer.bodies)
        found = arrived(url, count)
        check = (
            f"{found:,} of {count:,} readings found in VictoriaMetrics; the spool sent "
            f"{store_counters['sent_readings']:,}, dropped {store_counters['dropped_readings']:,}"
        )
        return elapsed, points, writer.bodies, check
    finally:
        proc.terminate()
        proc.wait()


def run_baseline(folder: Path, bodies: list[bytes], gzip: bool, count: int) -> tuple[float, int]:
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import WriteOptions

    lines = [line for body in bodies for line in body.decode().split("\n")]
    chunks = [lines[i : i + BATCH] for i in range(0, len(lines), BATCH)]
    proc, url = start_vm(folder / "vm-baseline")
    try:
        token = "bench-token"  # noqa: S105 (VictoriaMetrics takes any token)
        with InfluxDBClient(url=url, token=token, org="bench", enable_gzip=gzip) as client:
            start = time.perf_counter()
            with client.write_api(
                write_options=WriteOptions(batch_size=BATCH, flush_interval=1000)
            ) as write_api:
                for chunk in chunks:
                    write_api.write(bucket="gronkoll", record=chunk, write_precision="ms")
            elapsed = time.perf_counter() - start
        return elapsed, arrived(url, count)
    finally:
        proc.terminate()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--no-gzip", action="store_true", help="send uncompressed (both sides)")
    args = parser.parse_args()
    gzip = not args.no_gzip
    t0 = (int(time.time() * 1000) // 3_600_000 - 24 * 20) * 3_600_000  # 20 days ago, on the hour

    with tempfile.TemporaryDirectory(prefix="gronkoll-bench-influx-") as tmp:
        folder = Path(tmp)
        settings = bench_settings(folder, args.devices, gzip)
        g_s, points, bodies, check = run_gronkoll(folder, settings, args.readings, t0)
        b_s, b_found = run_baseline(folder, bodies, gzip, args.readings)

    g_rate, b_rate = points / g_s, points / b_s
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}; busy with other work, so the figures are indicative"
    )
    print(
        f"{args.readings:,} readings of {args.devices:,} devices, batches of {BATCH:,}; "
        f"{points:,} points sent (readings, energy hours, spool status); gzip {'on' if gzip else 'off'}"
    )
    print(f"check: {check}; baseline: {b_found:,} found")
    print(f"{'':44} {'seconds':>8} {'points/s':>10} {'readings/s':>11}")
    print(
        f"{'Gronkoll InfluxStore (spool + sender, v2)':44} {g_s:8.2f} {g_rate:10,.0f} "
        f"{args.readings / g_s:11,.0f}"
    )
    print(
        f"{'bare influxdb-client batching WriteApi':44} {b_s:8.2f} {b_rate:10,.0f} "
        f"{args.readings / b_s:11,.0f}"
    )
    ratio = g_rate / b_rate
    print(
        f"ratio Gronkoll / bare: {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
