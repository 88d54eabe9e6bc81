"""The InfluxDB store's write side against real servers: InfluxDB 1.6 (v1 /write) and
VictoriaMetrics (influxdb-client's v2 write API), read back with InfluxQL and /api/v1/export."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import servers
from influx_cases import (
    STEP,
    T0,
    export,
    influxql,
    new_database,
    readings,
    scalar,
    v1_store,
    v2_store,
    write_config,
)

from gronkoll.cli import main
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.stores.influx_sender import Sender
from gronkoll.stores.influxdb import InfluxStore

pytestmark = pytest.mark.integration
H = 3_600_000


def ingest(config: Path, items: list[tuple[str, str, int, float]], batch: int = 500) -> None:
    """Feed readings through the real ingestion path in batches, then close (which sends)."""
    with Runtime(load_settings(config)) as rt:
        for i in range(0, len(items), batch):
            rt.ingestor.ingest(items[i : i + batch])


def sqlite_hours(folder: Path, items: list[tuple[str, str, int, float]], dim: str) -> dict:
    """Energy per (hour, key) from the embedded store fed the same readings."""
    config = write_config(folder, {"kind": "sqlite"})
    ingest(config, items)
    with Runtime(load_settings(config)) as rt:
        first = min(r[2] for r in items)
        rows = rt.store.energy_by_hour("electricity", dim, first - H, first + 1000 * H)
    return {(h, k): round(wh, 6) for h, k, wh in rows}


def influx_hours(url: str, db: str, tag: str) -> dict:
    series = influxql(
        url,
        f"SELECT sum(wh) FROM energy WHERE quantity='electricity' AND time >= 0 "  # noqa: S608
        f'GROUP BY time(1h), "{tag}" fill(none)',
        db,
    )
    return {
        (t, s["tags"][tag]): round(v, 6)
        for s in series
        if s["tags"][tag]
        for t, v in s["values"]
        if v is not None
    }


def test_v1_writes_follow_the_documented_schema(influxdb: servers.InfluxDB, tmp_path: Path) -> None:
    db = new_database(influxdb.url)
    config = write_config(
        tmp_path / "influx", v1_store(influxdb.url, db, retention_policy="autogen")
    )
    items = readings(3000)

    ingest(config, items)

    fields = {"energy_wh_total": 0, "power_w": 0, "state": 0}
    for _, field, _, _ in items:
        fields[field] += 1
    for field, n in fields.items():
        assert scalar(influxdb.url, f'SELECT count("{field}") FROM reading', db) == n  # noqa: S608
    tags = influxql(influxdb.url, 'SHOW TAG VALUES FROM reading WITH KEY IN ("site", "group")', db)
    assert sorted(v[1] for v in tags[0]["values"]) == [
        "elevdatorer",
        "serverrum",
        "skola1",
        "ungrouped",
    ]
    # energy per site and hour is what the embedded store rolls up, the sub-metered server
    # counted once (through its meter), and per device too
    assert influx_hours(influxdb.url, db, "site") == sqlite_hours(tmp_path / "sq", items, "site")
    assert influx_hours(influxdb.url, db, "device") == sqlite_hours(
        tmp_path / "sq2", items, "device"
    )


def test_an_energy_hour_is_rewritten_as_it_fills_and_the_last_total_wins(
    influxdb: servers.InfluxDB, tmp_path: Path
) -> None:
    db = new_database(influxdb.url)
    config = write_config(tmp_path, v1_store(influxdb.url, db))
    items = [r for r in readings(600) if r[0] == "server-1"]  # 120 minutes of power

    ingest(config, items, batch=7)  # many batches per hour

    series = influxql(influxdb.url, "SELECT wh FROM energy WHERE device='server-1'", db)
    hours = {(t, "server-1"): round(wh, 6) for t, wh in series[0]["values"]}
    assert [t for t, _ in hours] == [T0, T0 + H]  # one point per hour, holding its total
    assert hours == sqlite_hours(tmp_path / "sq", items, "device")


def test_v2_writes_through_influxdb_client_reach_victoriametrics(
    victoriametrics: servers.VictoriaMetrics, tmp_path: Path
) -> None:
    start = T0 - 400 * 24 * H  # a stretch no other test writes to (VM refuses future times)
    config = write_config(tmp_path / "vm", v2_store(victoriametrics.url, batch_size=700))
    items = readings(2500, start=start)

    ingest(config, items)

    power = [
        s
        for s in export(victoriametrics.url, '{__name__="reading_power_w"}')
        if s["timestamps"][0] >= start
    ]
    assert {s["metric"]["device"] for s in power} == {"server-1", "sub-1", "pc-2"}
    sub = next(s for s in power if s["metric"]["device"] == "sub-1")
    assert sub["metric"]["site"] == "serverrum"  # readings keep the real site
    assert sum(len(s["values"]) for s in power) == sum(1 for r in items if r[1] == "power_w")
    energy = [
        s
        for s in export(victoriametrics.url, '{__name__="energy_wh"}')
        if s["timestamps"][0] >= start
    ]
    got = {}
    for s in energy:
        assert s["metric"]["quantity"] == "electricity"
        by_time: dict[int, float] = defaultdict(float)
        for t, v in zip(s["timestamps"], s["values"], strict=True):
            by_time[t] = max(by_time[t], v)  # an hour's total only grows; VM keeps each write
        got.update({(t, s["metric"]["device"]): round(v, 6) for t, v in by_time.items()})
    assert "site" not in next(s for s in energy if s["metric"]["device"] == "sub-1")["metric"]
    assert got == sqlite_hours(tmp_path / "sq", items, "device")


def test_check_config_says_the_store_answers(
    influxdb: servers.InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, v1_store(influxdb.url, new_database(influxdb.url)))
    assert main(["check-config", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"store: InfluxDB at {influxdb.url} (database 'gk_" in out
    assert "answers and takes writes" in out
    assert f"spool: {tmp_path / 'spool.sqlite'}" in out


def test_spool_status_works_without_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, v1_store(f"http://127.0.0.1:{servers.free_tcp_ports(1)[0]}", "x")
    )
    ingest(config, readings(100))  # nothing listens: everything stays spooled
    assert main(["spool", "status", "-c", str(config)]) == 0
    table = capsys.readouterr().out
    assert "entries: 1 batches" in table
    assert "readings queued: 100" in table
    assert "readings sent: 0" in table
    assert "is unreachable (connection refused)" in table
    assert main(["spool", "status", "--format", "json", "-c", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["entries"] == 1 and data["counters"]["queued_readings"] == 100
    assert data["oldest_entry"] is not None


def test_lines_the_server_refuses_are_dropped_alone_and_counted(
    influxdb: servers.InfluxDB, tmp_path: Path
) -> None:
    db = new_database(influxdb.url)
    later = T0 + 10 * 24 * H  # another week, so another shard: only its points conflict
    conflict = 'reading,device=pc-2,group=elevdatorer,kind=pc,site=skola1 power_w="text"'
    httpx.post(
        f"{influxdb.url}/write",
        params={"db": db, "precision": "ms"},
        content=f"{conflict} {later - STEP}",
        timeout=10,
    ).raise_for_status()
    config = write_config(tmp_path, v1_store(influxdb.url, db))
    with Runtime(load_settings(config)) as rt:
        store = rt.store
        assert isinstance(store, InfluxStore)
        store.sender.stop()  # queue all three first, so they go out in one request
        rt.ingestor.ingest(readings(50))
        rt.ingestor.ingest(readings(50, start=later))  # pc-2's power_w is text there
        rt.ingestor.ingest(readings(50, start=later + 30 * 24 * H))
        assert store.spool.entries == 3
        store.sender = Sender(
            store.spool, store.writer, batch_size=10_000, retry_max_s=1, host="test"
        )
        store.sender.start()
        assert store.flush(timeout_s=30)
        counters = store.spool.status().counters
    assert counters["sent_entries"] == 2
    assert counters["rejected_entries"] == 1 and counters["rejected_readings"] == 50
    # the entries before and after the bad one arrived whole; of the bad one, InfluxDB kept
    # what it could (a partial write): all but the conflicting power readings
    assert scalar(influxdb.url, 'SELECT count("state") FROM reading', db) == 30
    assert scalar(influxdb.url, 'SELECT count("power_w") FROM reading', db) == 60


def test_a_full_spool_drops_the_oldest_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{servers.free_tcp_ports(1)[0]}"
    config = write_config(tmp_path, v1_store(url, "x", spool_max_mb=0.02))  # 20 kB
    items = readings(2000)
    ingest(config, items, batch=100)
    assert main(["spool", "status", "--format", "json", "-c", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    counters = data["counters"]
    assert data["bytes"] <= 20_000
    assert counters["dropped_readings"] > 0
    assert counters["dropped_readings"] + 100 * data["entries"] == 2000  # each one counted
    assert counters["dropped_readings"] == 100 * counters["dropped_entries"]
