"""Test helpers for InfluxDB 1.6: a fresh database per test, and plain HTTP /write of lines."""

from __future__ import annotations

import json
import random
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from servers import InfluxDB

from gronkoll.demo import demo_config, write_config
from gronkoll.energy import REJECTED, Batch
from gronkoll.ingest import Ingestor
from gronkoll.settings import Settings, load_settings
from gronkoll.simulate import Simulation, calendar
from gronkoll.statedb import StateDB
from gronkoll.stores.base import Attribution
from gronkoll.stores.influxql import InfluxReader
from gronkoll.stores.sqlite import SqliteStore


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


# --- Until the InfluxDB store's own write side is merged: the same batches, as lines --------
def _key(text: str) -> str:
    """A tag key or value, or a field key, escaped as line protocol asks."""
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _tags(pairs: dict[str, str | None]) -> str:
    return ",".join(f"{k}={_key(v)}" for k, v in sorted(pairs.items()) if v is not None)


class TeeStore:
    """A SqliteStore that also writes each batch to InfluxDB as lines in the documented schema.

    Both stores then hold the very same batches, which the parity test compares.
    """

    def __init__(self, sqlite: Any, server: InfluxDB, database: str, sites: dict[str, str]) -> None:
        self.sqlite = sqlite
        self.server = server
        self.database = database
        self.sites = sites  # device -> its configured site, for reading points
        self.totals: dict[tuple[str, str, int], float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqlite, name)

    def write(self, batch: Batch, attribution: Mapping[str, Attribution]) -> Any:
        result = self.sqlite.write(batch, attribution)
        names = {sid: key for key, sid in self.sqlite._series.items()}
        points: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        for sid, t, value, _, _, flag in batch.rows:
            device, fld = names[sid]
            measurement = "rejected" if flag == REJECTED else "reading"
            points[(measurement, device, t)].append(f"{_key(fld)}={value!r}")
        lines = []
        for (measurement, device, t), fields in points.items():
            a = attribution[device]
            tags = _tags(
                {"device": device, "site": self.sites[device], "group": a.group, "kind": a.kind}
            )
            extra = ',reason="implausible"' if measurement == "rejected" else ""
            lines.append(f"{measurement},{tags} {','.join(fields)}{extra} {t}")
        for (quantity, device), hours in batch.hourly.items():
            a = attribution[device]
            tags = _tags(
                {
                    "device": device,
                    "site": a.site,
                    "group": a.group,
                    "kind": a.kind,
                    "quantity": quantity,
                }
            )
            for hour, wh in hours.items():
                total = self.totals[(quantity, device, hour)] = (
                    self.totals.get((quantity, device, hour), 0.0) + wh
                )
                lines.append(f"energy,{tags} wh={total!r} {hour * 3_600_000}")
        for device, t, kind, detail in batch.events:
            text = detail.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'event,{_tags({"device": device, "kind": kind})} detail="{text}" {t}')
        write_lines(self.server, self.database, lines)
        return result


@dataclass(frozen=True)
class InfluxDemo:
    """The demo municipality's readings over a few days, in SQLite and InfluxDB alike."""

    settings: Settings
    server: InfluxDB
    database: str
    first: date
    end: date

    def reader(self) -> InfluxReader:
        return InfluxReader(self.server.url, database=self.database, tz=self.settings.tz)

    def sqlite(self) -> SqliteStore:
        return SqliteStore(self.settings.store_path / "timeseries.db", self.settings.tz)


def build_influx_demo(folder: Path, server: InfluxDB, first: date, end: date) -> InfluxDemo:
    """Simulate the demo's municipality over [first, end) into both stores."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "gronkoll.yaml"
    write_config(config, demo_config("127.0.0.1", 8000))
    settings = load_settings(config)
    database = create_database(server, "demo")
    sites = {d.id: d.site for d in settings.devices}
    sqlite = SqliteStore(settings.store_path / "timeseries.db", settings.tz)
    state = StateDB(settings.state_url)
    try:
        ingestor = Ingestor(settings, TeeStore(sqlite, server, database, sites), state)  # type: ignore[arg-type]
        sim = Simulation(settings, random.Random(7))  # noqa: S311 (a repeatable simulation)
        sim.plan_meter_swap(first, (end - first).days)
        for day in calendar(first, end, settings.tz, set()):
            ingestor.ingest(sim.day(day))
    finally:
        state.close()
        sqlite.close()
    return InfluxDemo(settings, server, database, first, end)
