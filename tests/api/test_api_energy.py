"""GET /api/v1/energy: the CLI's report, as JSON by default and as CSV on request."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from gronkoll.reports import CSV_HEADER, energy_report, to_csv, to_json
from gronkoll.runtime import Runtime
from gronkoll.timeparse import parse_report_time

ENERGY = "/api/v1/energy"
PERIOD = {"from": "2026-03-28", "to": "2026-04-01"}


def direct_report(runtime: Runtime, params: dict[str, str]) -> Any:
    """The report computed without the API, as the CLI computes it."""
    tz = runtime.settings.tz
    return energy_report(
        runtime.store,
        runtime.factors,
        tz,
        start_ms=parse_report_time(params["from"], tz, option="--from"),
        end_ms=parse_report_time(params["to"], tz, option="--to"),
        by=params.get("by", "site"),
        bucket=params.get("bucket", "day"),
    )


@pytest.mark.parametrize(
    "params",
    [
        PERIOD,
        {**PERIOD, "by": "device", "bucket": "hour"},
        {**PERIOD, "by": "group", "bucket": "week"},
        {**PERIOD, "by": "kind", "bucket": "month"},
        {**PERIOD, "by": "device", "bucket": "none"},
        # ISO times with offsets, across the change from +01:00 to +02:00
        {"from": "2026-03-29T00:00+01:00", "to": "2026-03-29T05:00+02:00", "bucket": "hour"},
        # a local time without offset is read in the municipality's zone
        {"from": "2026-03-28T22:00", "to": "2026-03-30", "by": "device"},
    ],
    ids=["defaults", "device-hour", "group-week", "kind-month", "device-none", "iso", "naive"],
)
def test_json_is_the_cli_report(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]], params: dict[str, str]
) -> None:
    response = client.get(ENERGY, params=params, headers=auth["viewer"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = to_json(direct_report(runtime, params), runtime.settings.tz)
    assert response.json() == expected
    assert response.json()["rows"], "the period holds readings, so the report has rows"


def test_local_days_follow_the_dst_change(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    params = {**PERIOD, "by": "device"}

    body = client.get(ENERGY, params=params, headers=auth["viewer"]).json()

    pc = {row["bucket"]: row["energy_kwh"] for row in body["rows"] if row["key"] == "elev-pc-1"}
    # 60 W all day: 24 h on 28 March, 23 h on 29 March when clocks go from 02:00 to 03:00
    assert pc == {
        "2026-03-28": 1.44,
        "2026-03-29": 1.38,
        "2026-03-30": 1.44,
        "2026-03-31": 1.44,
    }
    assert body["timezone"] == "Europe/Stockholm"
    assert (body["from"], body["to"]) == ("2026-03-28T00:00+01:00", "2026-04-01T00:00+02:00")


def test_csv_with_the_format_parameter(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    params = {**PERIOD, "by": "device", "format": "csv"}

    response = client.get(ENERGY, params=params, headers=auth["viewer"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.splitlines()[0] == "bucket,key,energy_kwh,co2e_kg"
    assert response.text == to_csv(direct_report(runtime, params))


def test_csv_with_the_accept_header(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    response = client.get(ENERGY, params=PERIOD, headers={**auth["viewer"], "Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_HEADER
    assert {row[1] for row in rows[1:]} == {"norrskolan", "stadshuset"}
    assert response.text == to_csv(direct_report(runtime, PERIOD))


@pytest.mark.parametrize(
    ("accept", "fmt", "media"),
    [
        ("text/csv;q=0.5, application/json", None, "application/json"),
        ("application/json;q=0.2, text/csv", None, "text/csv; charset=utf-8"),
        ("*/*", None, "application/json"),
        ("text/html", None, "application/json"),
        ("text/csv", "json", "application/json"),
        ("application/json", "csv", "text/csv; charset=utf-8"),
    ],
)
def test_format_parameter_wins_over_accept(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accept: str,
    fmt: str | None,
    media: str,
) -> None:
    params = PERIOD if fmt is None else {**PERIOD, "format": fmt}

    response = client.get(ENERGY, params=params, headers={**auth["viewer"], "Accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"] == media
    assert response.headers["vary"] == "Accept"


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_may_read_energy(
    client: TestClient, auth: dict[str, dict[str, str]], role: str
) -> None:
    assert client.get(ENERGY, params=PERIOD, headers=auth[role]).status_code == 200


def test_a_period_without_readings_has_no_rows(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    params = {"from": "2025-01-01", "to": "2025-01-02"}

    body = client.get(ENERGY, params=params, headers=auth["viewer"]).json()

    assert body["rows"] == []
    assert body["totals"] == {"energy_kwh": 0, "co2e_kg": 0}
