"""`gronkoll report energy` and `GET /api/v1/energy` give the same numbers, to 1 Wh, whether
the store is SQLite or InfluxDB: the demo's readings in both, every bucket compared."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from influx_data import InfluxDemo
from starlette.testclient import TestClient

from gronkoll.api import create_app
from gronkoll.cli import main
from gronkoll.errors import StoreUnavailable
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings
from gronkoll.stores.base import DIMENSIONS
from gronkoll.timeparse import local_midnight_ms

pytestmark = pytest.mark.integration

BUCKETS = ("hour", "day", "week", "month")
# The demo covers 23 to 27 October 2026; the 25th has 25 hours in Europe/Stockholm.
SPANS = {
    "whole days": ("2026-10-23", "2026-10-27"),
    "parts of days": ("2026-10-23T10:00", "2026-10-26T17:00"),  # hours at both ends, days between
}


def by_bucket(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Wh per (bucket, key) from a report's JSON rows."""
    return {(r["bucket"], r["key"]): r["energy_kwh"] * 1000 for r in rows}


def assert_same(expected: dict[tuple[str, str], float], got: dict[tuple[str, str], float]) -> None:
    assert expected  # the demo has energy in every dimension
    assert got.keys() == expected.keys()
    for key, wh in expected.items():
        assert got[key] == pytest.approx(wh, abs=1.0), key


def cli_report(
    capsys: pytest.CaptureFixture[str], settings: Settings, span: str, by: str, bucket: str
) -> dict[tuple[str, str], float]:
    start, end = SPANS[span]
    config = Path(settings.base_dir) / "gronkoll.yaml"
    argv = ["-c", str(config), "report", "energy", "--from", start, "--to", end]
    assert main([*argv, "--by", by, "--bucket", bucket, "--format", "json"]) == 0
    return by_bucket(json.loads(capsys.readouterr().out)["rows"])


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("by", DIMENSIONS)
@pytest.mark.parametrize("span", SPANS)
def test_report_energy_matches_bucket_by_bucket(
    influx_demo: InfluxDemo, capsys: pytest.CaptureFixture[str], span: str, by: str, bucket: str
) -> None:
    expected = cli_report(capsys, influx_demo.sqlite, span, by, bucket)
    assert_same(expected, cli_report(capsys, influx_demo.influx, span, by, bucket))


@pytest.fixture(scope="module")
def clients(influx_demo: InfluxDemo) -> Iterator[tuple[TestClient, TestClient]]:
    """The API on each store, with a viewer key in the Authorization header."""
    with contextlib.ExitStack() as stack:
        out = []
        for settings in (influx_demo.sqlite, influx_demo.influx):
            runtime = stack.enter_context(Runtime(settings))
            key = runtime.state.create_api_key(f"paritet-{len(out)}", "viewer")
            client = stack.enter_context(TestClient(create_app(settings, runtime)))
            client.headers["Authorization"] = f"Bearer {key}"
            out.append(client)
        yield out[0], out[1]


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("by", DIMENSIONS)
def test_api_energy_matches_bucket_by_bucket(
    clients: tuple[TestClient, TestClient], by: str, bucket: str
) -> None:
    start, end = SPANS["parts of days"]
    params = {"from": start, "to": end, "by": by, "bucket": bucket}
    answers = [c.get("/api/v1/energy", params=params) for c in clients]
    assert [a.status_code for a in answers] == [200, 200]
    sqlite, influx = (a.json() for a in answers)
    assert_same(by_bucket(sqlite["rows"]), by_bucket(influx["rows"]))
    assert influx["totals"]["energy_kwh"] == pytest.approx(sqlite["totals"]["energy_kwh"], abs=1e-3)


def test_the_25_hour_day_has_25_hours_of_energy(influx_demo: InfluxDemo) -> None:
    day, after = date(2026, 10, 25), date(2026, 10, 26)
    reader = influx_demo.reader()
    with Runtime(influx_demo.sqlite) as rt:
        expected = rt.store.energy_by_day("electricity", "kind", day, after)
    got = reader.energy_by_day("electricity", "kind", day, after)
    assert {k: round(wh) for _, k, wh in got} == {k: round(wh) for _, k, wh in expected}
    tz = influx_demo.influx.tz
    bounds = local_midnight_ms(day, tz), local_midnight_ms(day + timedelta(days=1), tz)
    hours = reader.energy_by_hour("electricity", "kind", *bounds)
    assert len({t for t, _, _ in hours}) == 25


def test_the_demo_prints_the_same_reports_from_either_store(influx_demo: InfluxDemo) -> None:
    def reports(summary: str) -> str:
        # From the first report to the server room's PUE line; the folder and key differ.
        return summary[summary.index("Last ") : summary.index("API:")]

    plain, influx = influx_demo.summaries
    assert "Server room: IT (PDUs)" in reports(influx)
    assert reports(influx) == reports(plain)


def test_reads_wait_at_most_query_timeout_s(influx_demo: InfluxDemo) -> None:
    settings = influx_demo.influx
    store = settings.store.model_copy(update={"query_timeout_s": 0.001})
    with Runtime(settings.model_copy(update={"store": store})) as rt:
        with pytest.raises(StoreUnavailable, match=r"timed out"):
            rt.store.counts()  # a count over every reading takes far longer than 1 ms
