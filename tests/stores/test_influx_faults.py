"""The InfluxDB store under faults: the server stopped mid-import, Gronkoll killed with SIGKILL
while its spool holds data, and the start-up mistakes that must each give one clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from influx_cases import (
    T0,
    influxql,
    new_database,
    readings,
    scalar,
    v1_store,
    v2_store,
    wait_for,
    write_config,
)

from gronkoll.cli import main
from gronkoll.reports import energy_report
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.stores.influxdb import InfluxStore

pytestmark = pytest.mark.integration
DAY = 86_400_000
FIELDS = ("energy_wh_total", "power_w", "state")


def ingest(config: Path, items: list[tuple[str, str, int, float]], batch: int = 5000) -> None:
    with Runtime(load_settings(config)) as rt:
        for i in range(0, len(items), batch):
            rt.ingestor.ingest(items[i : i + batch])


def report(config: Path, by: str, bucket: str, days: int) -> dict[tuple[str, str], float]:
    """`gronkoll report energy` as the user gets it, keyed by (bucket, key), in kWh."""
    settings = load_settings(config)
    with Runtime(settings) as rt:
        result = energy_report(
            rt.store,
            rt.factors,
            settings.tz,
            start_ms=T0,
            end_ms=T0 + days * DAY,
            by=by,
            bucket=bucket,
        )
    return {(r.bucket, r.key): r.energy_kwh for r in result.rows}


def assert_same_report(influx: Path, sqlite: Path, days: int) -> None:
    for by, bucket in (("site", "day"), ("device", "hour"), ("kind", "week")):
        got, want = report(influx, by, bucket, days), report(sqlite, by, bucket, days)
        assert got.keys() == want.keys()
        for key, kwh in want.items():
            assert got[key] == pytest.approx(kwh, abs=0.001), (by, bucket, key)  # 1 Wh


def assert_each_reading_once(url: str, db: str, items: list[tuple[str, str, int, float]]) -> None:
    for field in FIELDS:
        want = sum(1 for r in items if r[1] == field)
        assert scalar(url, f'SELECT count("{field}") FROM reading', db) == want  # noqa: S608


@pytest.mark.slow
def test_influxdb_stopped_mid_import_gets_every_reading_once(
    influxdb: servers.InfluxDB, tmp_path: Path
) -> None:
    db = new_database(influxdb.url)
    config = write_config(tmp_path / "influx", v1_store(influxdb.url, db, retry_max_s=0.5))
    items = readings(100_000)
    try:
        with Runtime(load_settings(config)) as rt:
            store = rt.store
            assert isinstance(store, InfluxStore)
            for n, i in enumerate(range(0, len(items), 5000)):
                if n == 8:
                    influxdb.stop()
                rt.ingestor.ingest(items[i : i + 5000])
            assert store.spool.entries >= 10  # what came while the server was down
            influxdb.start()
            assert store.flush(timeout_s=120)
            counters = store.spool.status().counters
    finally:
        influxdb.start()
    assert counters["queued_readings"] == counters["sent_readings"] == 100_000
    assert counters["dropped_readings"] == counters["rejected_readings"] == 0
    assert counters["send_failures"] >= 1
    assert_each_reading_once(influxdb.url, db, items)
    sqlite = write_config(tmp_path / "sqlite", {"kind": "sqlite"})
    ingest(sqlite, items)
    assert_same_report(config, sqlite, days=15)


KILLED = """
import sys
from influx_cases import readings
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings

runtime = Runtime(load_settings(sys.argv[1]))
items = readings(20_000)
for i in range(0, 15_000, 1000):
    runtime.ingestor.ingest(items[i : i + 1000])
print("spooled", runtime.store.spool.entries, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.slow
def test_a_killed_process_loses_nothing_its_spool_held(
    influxdb: servers.InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = new_database(influxdb.url)
    config = write_config(tmp_path / "influx", v1_store(influxdb.url, db))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    with influxdb.down():
        with subprocess.Popen(
            [sys.executable, "-c", KILLED, str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert line.split()[:1] == ["spooled"] and int(line.split()[1]) == 15
        assert main(["spool", "status", "-c", str(config)]) == 0
        assert "readings queued: 15000" in capsys.readouterr().out
    assert scalar(influxdb.url, 'SELECT count("power_w") FROM reading', db) == 0
    # the next start sends the spool first, then goes on where the killed process stopped
    items = readings(20_000)
    with Runtime(load_settings(config)) as rt:
        rt.ingestor.ingest(items[15_000:])
    assert_each_reading_once(influxdb.url, db, items)
    sqlite = write_config(tmp_path / "sqlite", {"kind": "sqlite"})
    ingest(sqlite, items)
    assert_same_report(config, sqlite, days=3)


# -- start-up mistakes -------------------------------------------------------------------------
CSV = "time,device,field,value\n2026-03-29T00:00:00+01:00,server-1,power_w,250\n"


def run(args: list[str], capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = main([*args, "-c", str(config)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def import_csv(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    csv = config.parent / "r.csv"
    csv.write_text(CSV, encoding="utf-8")
    return run(["import", str(csv)], capsys, config)


@pytest.fixture(scope="module")
def vm_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.VictoriaMetrics]:
    """A VictoriaMetrics that asks for a user and password, so it refuses any token."""
    data = tmp_path_factory.mktemp("vm-auth")
    program = servers.find_program("victoria-metrics", package="victoria-metrics")
    (port,) = servers.free_tcp_ports(1)
    process = servers.ServerProcess(
        "victoria-metrics",
        [
            program,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={data / 'storage'}",
            "-httpAuth.username=gronkoll",
            "-httpAuth.password=right-password",
            "-loggerLevel=WARN",
        ],
        log_path=data / "vm.log",
        is_ready=lambda pid: servers.http_status(port, "/health") == 200,
    )
    process.start()
    yield servers.VictoriaMetrics(host="127.0.0.1", port=port, data_dir=data, process=process)
    process.stop()


def test_a_wrong_token_gives_one_clear_message(
    vm_with_auth: servers.VictoriaMetrics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, v2_store(vm_with_auth.url, token="not-the-token-xyz"))
    code, out, _ = run(["check-config"], capsys, config)
    assert code == 1
    assert (
        f"store: FAILED: InfluxDB at {vm_with_auth.url} (bucket 'gronkoll', org 'kommunen') "
        "refused our credentials (HTTP 401" in out
    )
    assert "check store.token" in out
    code, _, err = import_csv(config, capsys)
    assert code == 1
    assert err.count("\n") == 1 and "refused our credentials (HTTP 401" in err
    assert "not-the-token-xyz" not in out + err


def test_an_unknown_database_gives_one_clear_message(
    influxdb: servers.InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, v1_store(influxdb.url, "no_such_db"))
    code, _, err = import_csv(config, capsys)
    assert (code, err) == (
        1,
        f"gronkoll: InfluxDB at {influxdb.url} (database 'no_such_db'): no such database "
        '(database not found: "no_such_db"); create it or fix store.database\n',
    )


def test_the_v2_api_against_influxdb_1_6_says_to_use_v1(
    influxdb: servers.InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, v2_store(influxdb.url))
    code, out, _ = run(["check-config"], capsys, config)
    assert code == 1
    assert (
        "it has no /api/v2/write: InfluxDB 1.x before 1.8 speaks only the v1 API; set "
        "store.api: v1" in out
    )


def test_an_unreachable_host_is_said_once_and_the_readings_wait_in_the_spool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{servers.free_tcp_ports(1)[0]}"
    config = write_config(tmp_path, v1_store(url, "gronkoll", password="s3cret-pw", username="u"))
    code, out, _ = run(["check-config"], capsys, config)
    assert code == 1
    assert (
        f"store: FAILED: InfluxDB at {url} (database 'gronkoll') is unreachable "
        "(connection refused)" in out
    )
    code, out, err = import_csv(config, capsys)
    assert code == 0  # the readings are safe in the spool
    unreachable = [r for r in caplog.records if "is unreachable" in r.getMessage()]
    assert len(unreachable) == 2  # at start, and once by the sender (not every retry)
    assert "s3cret-pw" not in out + err + caplog.text
    code, out, _ = run(["spool", "status"], capsys, config)
    assert "readings queued: 1\n" in out and "readings sent: 0" in out


def test_the_sender_logs_a_dead_server_once_and_its_return_once(
    influxdb: servers.InfluxDB, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = new_database(influxdb.url)
    config = write_config(tmp_path, v1_store(influxdb.url, db, retry_max_s=0.2))
    items = readings(500)
    try:
        with Runtime(load_settings(config)) as rt:
            store = rt.store
            assert isinstance(store, InfluxStore)
            influxdb.stop()
            rt.ingestor.ingest(items)
            status = store.spool.status
            wait_for(lambda: status().counters["send_failures"] >= 3)
            influxdb.start()
            assert store.flush(timeout_s=30)
    finally:
        influxdb.start()
    messages = [r.getMessage() for r in caplog.records if r.name == "gronkoll.stores.influx_sender"]
    assert sum("readings are kept in the spool" in m for m in messages) == 1  # not per retry
    assert sum("takes writes again" in m for m in messages) == 1
    assert influxql(influxdb.url, "SELECT count(*) FROM gronkoll_spool", db)


def test_an_unknown_retention_policy_gives_one_clear_message(
    influxdb: servers.InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = new_database(influxdb.url)
    config = write_config(tmp_path, v1_store(influxdb.url, db, retention_policy="forever"))
    code, out, _ = run(["check-config"], capsys, config)
    assert code == 1
    assert (
        f"store: FAILED: InfluxDB at {influxdb.url} (database '{db}'): retention policy "
        "not found: forever; fix store.retention_policy" in out
    )
