"""GET /api/v1/shutdowns: the shutdown report over HTTP, for any role, with the error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from gronkoll.runtime import Runtime
from gronkoll.savings import morning_cap
from gronkoll.shutdown_results import ShutdownResult, save

EVENING = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def test_the_shutdown_report_is_served_as_json_and_csv(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    off = EVENING + timedelta(minutes=1)
    common = {
        "policy": "skolor-kvall",
        "planned_at": EVENING,
        "night": EVENING.date(),
        "site": "norrskolan",
        "group": None,
        "audit_only": False,
        "idle_w": 35.0,
        "off_w": 0.5,
    }
    save(
        runtime.state,
        [
            ShutdownResult(
                run_id="a" * 32,
                device="elev-pc-1",
                outcome="off",
                off_at=off,
                until_at=morning_cap(off, runtime.settings),
                **common,  # type: ignore[arg-type]
            ),
            ShutdownResult(
                run_id="a" * 32,
                device="elev-pc-2",
                outcome="non-compliant",
                reason="no-agent",
                **common,  # type: ignore[arg-type]
            ),
        ],
    )
    params = {"from": "2026-11-24", "to": "2026-11-25", "by": "site"}
    answer = client.get("/api/v1/shutdowns", params=params, headers=auth["viewer"])
    assert answer.status_code == 200
    body = answer.json()
    (row,) = body["rows"]
    assert (row["key"], row["targeted"], row["off"], row["non_compliant_no_agent"]) == (
        "norrskolan",
        2,
        1,
        1,
    )
    assert row["energy_kwh"] > 0 and body["baseline"]["counterfactual_on_share"] == 0.56

    as_csv = client.get(
        "/api/v1/shutdowns", params={**params, "format": "csv"}, headers=auth["viewer"]
    )
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.text.splitlines()[1].startswith("2026-11-24,norrskolan,2,1,")


def test_the_shutdown_report_refuses_bad_input_with_the_error_shape(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    for params in (
        {"from": "2026-11-24", "to": "2026-11-25", "by": "room"},
        {"from": "2026-11-24", "to": "yesterday"},
        {"from": "2026-11-24", "to": "2026-11-25", "frm": "x"},
    ):
        answer = client.get("/api/v1/shutdowns", params=params, headers=auth["viewer"])
        assert answer.status_code == 400, params
        assert set(answer.json()) == {"error", "detail"}
    assert (
        client.get(
            "/api/v1/shutdowns", params={"from": "2026-11-24", "to": "2026-11-25"}
        ).status_code
        == 401
    )
