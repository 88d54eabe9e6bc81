"""Every failure answers in one shape, {"error": code, "detail": text}, with the right status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gronkoll.api import create_app
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings

ENERGY = "/api/v1/energy"
PERIOD = {"from": "2026-03-28", "to": "2026-04-01"}


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check the status and the one error shape; return the detail text."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    detail: str = body["detail"]
    return detail


@pytest.mark.parametrize(
    ("params", "in_detail"),
    [
        ({"from": "2026-02-30", "to": "2026-04-01"}, "from '2026-02-30': not a date"),
        ({"from": "last tuesday", "to": "2026-04-01"}, "expected a date (YYYY-MM-DD) or an ISO"),
        ({**PERIOD, "by": "floor"}, "unknown grouping 'floor' (expected one of device, site"),
        ({**PERIOD, "bucket": "year"}, "unknown bucket 'year' (expected one of hour, day"),
        ({**PERIOD, "format": "xml"}, "unknown format 'xml' (expected one of json, csv)"),
        ({"from": "2026-04-01", "to": "2026-03-28"}, "to must be after from (to is exclusive)"),
        ({"from": "2026-03-28", "to": "2026-03-28"}, "must be after"),
        ({"from": "2026-03-28T10:30+01:00", "to": "2026-04-01"}, "whole hour"),
        ({**PERIOD, "group": "site"}, "unknown query parameter 'group'"),
        ({"to": "2026-04-01"}, "missing query parameter 'from'"),
        ({"from": "2026-03-28"}, "missing query parameter 'to'"),
        ({}, "missing query parameter 'from'; missing query parameter 'to'"),
    ],
    ids=[
        "impossible-date",
        "not-a-time",
        "unknown-grouping",
        "unknown-bucket",
        "unknown-format",
        "to-before-from",
        "empty-range",
        "off-the-hour",
        "unknown-parameter",
        "missing-from",
        "missing-to",
        "missing-both",
    ],
)
def test_bad_requests(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    params: dict[str, str],
    in_detail: str,
) -> None:
    response = client.get(ENERGY, params=params, headers=auth["viewer"])

    assert in_detail in assert_error(response, 400, "bad_request")


def test_bad_requests_are_answered_as_json_even_when_csv_is_asked_for(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    response = client.get(
        ENERGY, params={**PERIOD, "by": "floor"}, headers={**auth["viewer"], "Accept": "text/csv"}
    )

    assert_error(response, 400, "bad_request")
    assert response.headers["content-type"] == "application/json"


def test_unknown_route(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    response = client.get("/api/v1/energi", headers=auth["viewer"])

    assert "/api/v1/energi" in assert_error(response, 404, "not_found")


def test_unknown_route_without_a_key_is_still_404(client: TestClient) -> None:
    assert_error(client.get("/api/v2/anything"), 404, "not_found")


def test_wrong_method(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    response = client.post(ENERGY, params=PERIOD, headers=auth["viewer"])

    detail = assert_error(response, 405, "method_not_allowed")
    assert "POST" in detail
    assert "GET" in response.headers["allow"]


def test_interactive_docs_are_off(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert_error(client.get(path), 404, "not_found")


def viewer_key(settings: Settings) -> str:
    """A viewer key in the settings' state database, which opens without the store."""
    with Runtime(settings) as runtime:
        return runtime.state.create_api_key("viewer-nyckel", "viewer")


def test_unopenable_store_is_503_on_energy(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("a file where the store's folder should be\n")
    settings = make_settings(
        store={"path": "blocked/data", "state_url": f"sqlite:///{tmp_path / 'state.db'}"}
    )
    key = viewer_key(settings)

    with TestClient(create_app(settings)) as client:
        response = client.get(ENERGY, params=PERIOD, headers={"Authorization": f"Bearer {key}"})

    detail = assert_error(response, 503, "store_unavailable")
    assert "blocked" not in detail, "file paths stay in the server log"


def test_unexpected_errors_are_500_and_logged(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(store={"path": "corrupt"})
    settings.store_path.mkdir()
    (settings.store_path / "timeseries.db").write_bytes(b"no longer an SQLite file\n" * 200)
    key = viewer_key(settings)

    with TestClient(create_app(settings)) as client:
        response = client.get(ENERGY, params=PERIOD, headers={"Authorization": f"Bearer {key}"})

    detail = assert_error(response, 500, "internal_error")
    assert "Traceback" not in response.text
    assert "SQLite" not in detail and "corrupt" not in detail, "the cause stays in the log"
    logged = [r for r in caplog.records if r.name == "gronkoll.api.errors"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert key not in caplog.text
