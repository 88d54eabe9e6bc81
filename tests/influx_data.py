"""The demo municipality in both stores: SQLite, and InfluxDB 1.6 through the real InfluxStore.

`gronkoll demo` runs twice with the same seed and period, once as is and once with
``--influxdb``, so the two stores get the very same readings through the ordinary ingestion
path; the parity and Grafana tests read them back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from servers import InfluxDB

from gronkoll.demo import main as demo_main
from gronkoll.settings import Settings, load_settings
from gronkoll.stores.influxql import InfluxReader


def influx_post(server: InfluxDB, path: str, params: dict[str, str], body: bytes) -> bytes:
    """POST to the server's HTTP API and return the answer; fail the test on an error status."""
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        return bytes(resp.read())


def create_database(server: InfluxDB, prefix: str = "gk") -> str:
    """A new, empty database with a unique name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    answer = influx_post(server, "/query", {"q": f'CREATE DATABASE "{name}"'}, b"")
    assert "error" not in json.loads(answer)["results"][0]
    return name


def write_lines(server: InfluxDB, database: str, lines: list[str], batch: int = 20_000) -> None:
    """Write line protocol (precision ms) in batches through /write."""
    for i in range(0, len(lines), batch):
        body = "\n".join(lines[i : i + batch]).encode()
        influx_post(server, "/write", {"db": database, "precision": "ms"}, body)


@dataclass(frozen=True)
class InfluxDemo:
    """The demo's readings over a few days, in SQLite (``sqlite``) and InfluxDB (``influx``)."""

    sqlite: Settings
    influx: Settings
    server: InfluxDB
    database: str
    first: date
    end: date
    summaries: tuple[str, str]  # what each `gronkoll demo` printed

    def reader(self) -> InfluxReader:
        return InfluxReader(self.server.url, database=self.database, tz=self.influx.tz)


def run_demo(folder: Path, days: int, end: date, **options: str | None) -> str:
    """Run `gronkoll demo --no-serve` into folder; what it printed."""
    args = argparse.Namespace(
        no_serve=True, dir=str(folder), days=days, seed=3, host=None, port=None,
        end=end.isoformat(), **options,
    )  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert demo_main(args) == 0
    return out.getvalue()


def build_influx_demo(folder: Path, server: InfluxDB, first: date, end: date) -> InfluxDemo:
    """The demo over [first, end) into SQLite and into a new InfluxDB database."""
    database = f"demo_{uuid.uuid4().hex[:10]}"
    days = (end - first).days
    plain = run_demo(folder / "sqlite", days, end)
    influx = run_demo(folder / "influx", days, end, influxdb=server.url, influxdb_database=database)
    assert first == end - timedelta(days=days)
    return InfluxDemo(
        sqlite=load_settings(folder / "sqlite" / "gronkoll.yaml"),
        influx=load_settings(folder / "influx" / "gronkoll.yaml"),
        server=server,
        database=database,
        first=first,
        end=end,
        summaries=(plain, influx),
    )
