"""The embedded SQLite store: local-time buckets, DST, rollups, tz changes, the block index."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gronkoll.carbon import factors
from gronkoll.reports import energy_report
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings, load_settings
from gronkoll.stores.sqlite import SqliteStore
from gronkoll.timeparse import parse_report_time

HOUR = 3_600_000
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def ms(text: str) -> int:
    return parse_report_time(text, STOCKHOLM, option="--from")


def flat_power(
    settings: Settings, start: str, end: str, watts: float = 1000.0, step_min: int = 15
) -> None:
    with Runtime(settings) as rt:
        t, stop = ms(start), ms(end)
        readings = []
        while t <= stop:
            readings.append(("server-1", "power_w", t, watts))
            t += step_min * 60_000
        rt.ingestor.ingest(readings)


def report(
    settings: Settings, start: str, end: str, *, by: str = "device", bucket: str = "day"
) -> dict[str, float]:
    with Runtime(settings) as rt:
        r = energy_report(
            rt.store,
            factors(settings),
            STOCKHOLM,
            start_ms=ms(start),
            end_ms=ms(end),
            by=by,
            bucket=bucket,
        )
    return {f"{row.bucket}/{row.key}": row.energy_kwh for row in r.rows}


@pytest.fixture
def settings(fleet_config: Path) -> Settings:
    text = fleet_config.read_text().replace("rated_power_w: 1000}", "rated_power_w: 5000}")
    fleet_config.write_text(text)
    return load_settings(fleet_config)


def test_dst_days_have_23_and_25_hours(settings: Settings) -> None:
    flat_power(settings, "2026-03-28", "2026-03-31")
    flat_power(settings, "2026-10-24", "2026-10-27")
    got = report(settings, "2026-03-28", "2026-10-27")
    assert got["2026-03-28/server-1"] == pytest.approx(24)
    assert got["2026-03-29/server-1"] == pytest.approx(23)
    assert got["2026-03-30/server-1"] == pytest.approx(24)
    assert got["2026-10-25/server-1"] == pytest.approx(25)
    hours = report(settings, "2026-10-25", "2026-10-26", bucket="hour")
    assert len(hours) == 25
    assert "2026-10-25T02:00+02:00/server-1" in hours and "2026-10-25T02:00+01:00/server-1" in hours


def test_months_weeks_and_days_sum_exactly_to_the_year(settings: Settings) -> None:
    flat_power(settings, "2026-01-01", "2027-01-01", watts=1000, step_min=15)
    for by in ("device", "site", "group", "kind"):
        year = sum(report(settings, "2026-01-01", "2027-01-01", by=by, bucket="none").values())
        months = report(settings, "2026-01-01", "2027-01-01", by=by, bucket="month")
        days = report(settings, "2026-01-01", "2027-01-01", by=by, bucket="day")
        assert year == pytest.approx(8760, abs=1e-6)  # 365 days of 1 kW, DST changes included
        assert sum(months.values()) == pytest.approx(year, abs=1e-9)
        assert sum(days.values()) == pytest.approx(year, abs=1e-9)
        assert len(months) == 12 and len(days) == 365
    # a range that does not start at midnight uses hourly rollups for its edges
    part = report(settings, "2026-02-01T05:00", "2026-02-03T07:00", bucket="none")
    assert sum(part.values()) == pytest.approx(50)


def test_reports_read_rollups_never_raw_readings(settings: Settings) -> None:
    flat_power(settings, "2026-01-01", "2026-03-01", step_min=15)
    before = report(settings, "2026-01-01", "2026-03-01", by="site", bucket="week")
    db = settings.store_path / "timeseries.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM readings")
    assert report(settings, "2026-01-01", "2026-03-01", by="site", bucket="week") == before


def test_changing_the_time_zone_rebuilds_the_day_rollups(
    settings: Settings, tmp_path: Path
) -> None:
    flat_power(settings, "2026-06-01", "2026-06-03")
    store = SqliteStore(settings.store_path / "timeseries.db", ZoneInfo("UTC"))
    try:
        days = {
            d: wh
            for d, _, wh in store.energy_by_day(
                "electricity", "device", date(2026, 5, 31), date(2026, 6, 3)
            )
        }
    finally:
        store.close()
    # local midnight 2026-06-01 is 22:00 UTC on 31 May: two hours fall on the UTC day before
    assert days[date(2026, 5, 31)] == pytest.approx(2000)
    assert days[date(2026, 6, 2)] == pytest.approx(22_000)


def test_the_block_index_finds_readings_in_a_window(settings: Settings) -> None:
    flat_power(settings, "2026-06-01", "2026-06-02")
    flat_power(settings, "2026-06-05", "2026-06-06")
    store = SqliteStore(settings.store_path / "timeseries.db", STOCKHOLM)
    try:
        rows = store.readings(ms("2026-06-05T10:00"), ms("2026-06-05T11:00"), device="server-1")
    finally:
        store.close()
    assert [r[2] for r in rows] == [ms("2026-06-05T10:00") + i * 900_000 for i in range(4)]
    assert all(r[1] == "power_w" and r[3] == 1000.0 for r in rows)


def test_a_site_total_counts_a_metered_device_once(fleet_config: Path) -> None:
    fleet_config.write_text(
        fleet_config.read_text().replace(
            "{id: server-1, site: serverrum, kind: server, rated_power_w: 1000}",
            "{id: server-1, site: serverrum, kind: server, rated_power_w: 1000, metered_by: meter-1}",
        )
    )
    settings = load_settings(fleet_config)
    with Runtime(settings) as rt:
        rt.ingestor.ingest(
            [("server-1", "power_w", ms("2026-06-01") + i * 900_000, 800.0) for i in range(5)]
            + [
                ("meter-1", "energy_wh_total", ms("2026-06-01") + i * 900_000, 300.0 * i)
                for i in range(5)
            ]
        )
    start, end = "2026-06-01", "2026-06-02"
    assert report(settings, start, end, by="site", bucket="none") == {
        "all/serverrum": pytest.approx(1.2)
    }
    assert report(settings, start, end, by="device", bucket="none") == {
        "all/meter-1": pytest.approx(1.2),
        "all/server-1": pytest.approx(0.8),
    }
    assert report(settings, start, end, by="kind", bucket="none") == {
        "all/meter": pytest.approx(1.2),
        "all/server": pytest.approx(0.8),
    }


def test_metered_by_must_name_a_meter_on_the_same_site(fleet_config: Path) -> None:
    from gronkoll.errors import ConfigError

    text = fleet_config.read_text()
    fleet_config.write_text(text.replace("kind: pc}", "kind: pc, metered_by: server-1}", 1))
    with pytest.raises(
        ConfigError, match=r"devices\[2\].metered_by: 'server-1' is not a device of kind meter"
    ):
        load_settings(fleet_config)
    fleet_config.write_text(text.replace("kind: pc}", "kind: pc, metered_by: meter-1}", 1))
    with pytest.raises(ConfigError, match="meter 'meter-1' is on site 'serverrum', not 'skola1'"):
        load_settings(fleet_config)
