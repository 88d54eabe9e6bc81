"""SQLite and InfluxDB give the same energy report, bucket by bucket, to 1 Wh."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from influx_data import InfluxDemo

from gronkoll.carbon import factors
from gronkoll.reports import energy_report
from gronkoll.stores.base import DIMENSIONS
from gronkoll.stores.influxql import InfluxReader
from gronkoll.stores.sqlite import SqliteStore
from gronkoll.timeparse import local_midnight_ms, parse_report_time

pytestmark = pytest.mark.integration

BUCKETS = ("hour", "day", "week", "month")


@pytest.fixture(scope="module")
def stores(influx_demo: InfluxDemo) -> Iterator[tuple[SqliteStore, InfluxReader]]:
    sqlite, reader = influx_demo.sqlite(), influx_demo.reader()
    yield sqlite, reader
    sqlite.close()
    reader.close()


def buckets(report) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    return {(r.bucket, r.key): r.energy_kwh * 1000 for r in report.rows}


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("by", DIMENSIONS)
@pytest.mark.parametrize("span", ["whole days", "parts of days"])
def test_every_bucket_matches_to_1_wh(
    influx_demo: InfluxDemo,
    stores: tuple[SqliteStore, InfluxReader],
    by: str,
    bucket: str,
    span: str,
) -> None:
    settings, tz = influx_demo.settings, influx_demo.settings.tz
    if span == "whole days":
        start = local_midnight_ms(influx_demo.first, tz)
        end = local_midnight_ms(influx_demo.end, tz)
    else:  # the report reads hours for the part days at either end, days in between
        start = parse_report_time("2026-10-23T10:00", tz, option="--from")
        end = parse_report_time("2026-10-26T17:00", tz, option="--to")
    f = factors(settings)
    sqlite, reader = stores
    expected = buckets(
        energy_report(sqlite, f, tz, start_ms=start, end_ms=end, by=by, bucket=bucket)
    )
    got = buckets(energy_report(reader, f, tz, start_ms=start, end_ms=end, by=by, bucket=bucket))
    assert expected  # the demo has energy in every dimension
    assert got.keys() == expected.keys()
    for key, wh in expected.items():
        assert got[key] == pytest.approx(wh, abs=1.0), key


def test_the_25_hour_day_has_25_hours_of_energy(stores: tuple[SqliteStore, InfluxReader]) -> None:
    sqlite, reader = stores
    day = date(2026, 10, 25)
    got = reader.energy_by_day("electricity", "kind", day, date(2026, 10, 26))
    expected = sqlite.energy_by_day("electricity", "kind", day, date(2026, 10, 26))
    assert {k: round(wh) for _, k, wh in got} == {k: round(wh) for _, k, wh in expected}
