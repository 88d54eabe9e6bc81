"""`gronkoll report power`: the latest power per device, site or kind, and what it leaves out."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gronkoll.cli import main
from gronkoll.fields import STATE_CODES
from gronkoll.power import power_report
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings

CONFIG = """\
municipality: {name: Exempelby, timezone: Europe/Stockholm}
sites:
  - {id: serverrum, kind: server_room}
  - {id: skola1, kind: school}
devices:
  - {id: meter-1, site: serverrum, kind: meter}
  - {id: server-1, site: serverrum, kind: server, metered_by: meter-1}
  - {id: server-2, site: serverrum, kind: server}
  - {id: pc-1, site: skola1, kind: pc}
  - {id: pc-2, site: skola1, kind: pc}
  - {id: pc-3, site: skola1, kind: pc}
store: {kind: sqlite, path: data}
"""

AT_MS = 1_790_000_000_000  # 2026-09-21, a fixed "now"
MIN = 60_000


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def ingest(config: Path, readings: list[tuple[str, str, int, float]]) -> None:
    with Runtime(load_settings(config)) as runtime:
        runtime.ingestor.ingest(readings)


def fleet_readings(now_ms: int) -> list[tuple[str, str, int, float]]:
    """meter 5 kW (covers server-1), server-1 400 W, server-2 300 W, pc-1 on, pc-2 stale."""
    return [
        ("meter-1", "power_w", now_ms - 2 * MIN, 4900.0),
        ("meter-1", "power_w", now_ms - MIN, 5000.0),
        ("server-1", "power_w", now_ms - MIN, 400.0),
        ("server-2", "power_w", now_ms - 30_000, 300.0),
        ("pc-1", "state", now_ms - 3 * MIN, float(STATE_CODES["on"])),
        ("pc-2", "power_w", now_ms - 16 * MIN, 55.0),  # older than max(3 × 60 s, 900 s)
    ]


def report(config: Path, by: str) -> dict[str, tuple[float, int, int]]:
    settings = load_settings(config)
    with Runtime(settings) as runtime:
        result = power_report(settings, runtime.store, by=by, at_ms=AT_MS)
    return {r.key: (r.power_w, r.time_ms, r.devices) for r in result.rows}


def test_by_site_counts_a_metered_device_through_its_meter_only(config: Path) -> None:
    ingest(config, fleet_readings(AT_MS))
    rows = report(config, "site")
    # serverrum: meter 5000 + server-2 300 (server-1 is inside the meter's 5000)
    assert rows["serverrum"] == (5300.0, AT_MS - 30_000, 2)
    # skola1: pc-1's state on × the pc profile's on_w (60 W); pc-2 is stale, pc-3 silent
    assert rows["skola1"] == (60.0, AT_MS - 3 * MIN, 1)


def test_by_kind_and_by_device_count_every_device(config: Path) -> None:
    ingest(config, fleet_readings(AT_MS))
    assert report(config, "kind") == {
        "meter": (5000.0, AT_MS - MIN, 1),
        "server": (700.0, AT_MS - 30_000, 2),
        "pc": (60.0, AT_MS - 3 * MIN, 1),
    }
    by_device = report(config, "device")
    assert by_device["server-1"] == (400.0, AT_MS - MIN, 1)
    assert set(by_device) == {"meter-1", "server-1", "server-2", "pc-1"}


def test_stale_and_missing_devices_are_left_out_and_named(config: Path) -> None:
    ingest(config, fleet_readings(AT_MS))
    settings = load_settings(config)
    with Runtime(settings) as runtime:
        result = power_report(settings, runtime.store, by="site", at_ms=AT_MS)
        # meter-1's newest reading is 1 min old: exactly 15 min later it still counts
        edge = power_report(settings, runtime.store, by="device", at_ms=AT_MS + 14 * MIN)
        later = power_report(settings, runtime.store, by="device", at_ms=AT_MS + 14 * MIN + 1)
    assert result.stale == [("pc-2", AT_MS - 16 * MIN)]
    assert result.no_reading == ["pc-3"]
    assert result.from_state == ["pc-1"]
    assert "meter-1" in {r.key for r in edge.rows}
    assert "meter-1" not in {r.key for r in later.rows}
    assert ("meter-1", AT_MS - MIN) in later.stale


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_csv_header_sums_and_local_times(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    now_ms = round(time.time() * 1000)
    ingest(config, fleet_readings(now_ms))
    code, out, err = run(
        capsys, "-c", str(config), "report", "power", "--by", "site", "--format", "csv"
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["key", "power_w", "time"]
    sums = {key: (float(w), t) for key, w, t in rows[1:]}
    assert sums["serverrum"][0] == 5300.0 and sums["skola1"][0] == 60.0
    # the newest reading in the sum, as local ISO 8601 with the offset
    from datetime import datetime

    newest = datetime.fromtimestamp((now_ms - 30_000) / 1000, ZoneInfo("Europe/Stockholm"))
    assert sums["serverrum"][1] == newest.isoformat(timespec="seconds")


def test_cli_table_and_json_name_what_was_left_out(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    now_ms = round(time.time() * 1000)
    ingest(config, fleet_readings(now_ms))
    code, out, _ = run(capsys, "-c", str(config), "report", "power", "--by", "kind")
    assert code == 0
    assert "by kind" in out and "5,000.0" in out and "total" in out
    assert "pc-2" in out and "too old" in out  # the stale PC is named, not summed
    code, out, _ = run(capsys, "-c", str(config), "report", "power", "--format", "json")
    document = json.loads(out)
    assert document["by"] == "site" and document["total_w"] == 5360.0
    assert [d["device"] for d in document["left_out_stale"]] == ["pc-2"]
    assert document["no_reading"] == ["pc-3"]


def test_cli_an_empty_store_prints_an_empty_report(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, out, _ = run(capsys, "-c", str(config), "report", "power", "--format", "csv")
    assert code == 0 and out == "key,power_w,time\n"
    code, out, _ = run(capsys, "-c", str(config), "report", "power")
    assert code == 0 and "(no recent power or state readings)" in out
