"""Bearer keys: missing, malformed, wrong, revoked and too-low keys, and keys never leaking."""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.testclient import TestClient

from gronkoll.api.auth import require_role
from gronkoll.runtime import Runtime
from gronkoll.statedb import ApiKey

ENERGY = "/api/v1/energy"
PERIOD = {"from": "2026-03-28", "to": "2026-04-01"}


def assert_unauthorized(response: httpx.Response) -> str:
    """A 401 in the one error shape with a Bearer challenge; returns the detail."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "unauthorized"
    detail: str = body["detail"]
    return detail


def test_missing_key(client: TestClient) -> None:
    response = client.get(ENERGY, params=PERIOD)

    assert "Authorization: Bearer KEY" in assert_unauthorized(response)
    assert response.headers["www-authenticate"] == "Bearer"


def test_missing_key_is_checked_before_the_parameters(client: TestClient) -> None:
    # Someone without a key learns nothing about the route's parameters.
    assert_unauthorized(client.get(ENERGY))


@pytest.mark.parametrize(
    "header",
    ["Basic dmlld2VyOnNlY3JldA==", "Bearer", "Bearer    ", "Bearer two words", "gk_no_scheme"],
)
def test_malformed_authorization_header(client: TestClient, header: str) -> None:
    response = client.get(ENERGY, params=PERIOD, headers={"Authorization": header})

    assert "must be 'Bearer KEY'" in assert_unauthorized(response)


def test_scheme_is_case_insensitive(client: TestClient, keys: dict[str, str]) -> None:
    headers = {"Authorization": f"bearer {keys['viewer']}"}

    assert client.get(ENERGY, params=PERIOD, headers=headers).status_code == 200


def test_wrong_and_revoked_keys_answer_alike(
    client: TestClient, runtime: Runtime, keys: dict[str, str]
) -> None:
    wrong = client.get(ENERGY, params=PERIOD, headers={"Authorization": "Bearer gk_not-a-key"})
    assert runtime.state.revoke_api_key("viewer-nyckel")
    revoked = client.get(
        ENERGY, params=PERIOD, headers={"Authorization": f"Bearer {keys['viewer']}"}
    )

    assert_unauthorized(wrong)
    assert_unauthorized(revoked)
    assert wrong.json() == revoked.json()
    assert wrong.headers["www-authenticate"] == revoked.headers["www-authenticate"]


def test_revoking_a_key_shuts_it_out_at_once(
    client: TestClient, runtime: Runtime, keys: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {keys['operator']}"}
    assert client.get(ENERGY, params=PERIOD, headers=headers).status_code == 200

    runtime.state.revoke_api_key("operator-nyckel")

    assert_unauthorized(client.get(ENERGY, params=PERIOD, headers=headers))


@pytest.fixture
def admin_route(app: FastAPI) -> str:
    """A route on the real app that needs the admin role, as later admin routes will."""
    router = APIRouter()

    @router.get("/api/v1/test-admin-only")
    def admin_only(key: Annotated[ApiKey, Depends(require_role("admin"))]) -> dict[str, str]:
        return {"name": key.name}

    app.include_router(router)
    return "/api/v1/test-admin-only"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_too_low_role_is_forbidden(
    client: TestClient, auth: dict[str, dict[str, str]], admin_route: str, role: str
) -> None:
    response = client.get(admin_route, headers=auth[role])

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": f"this route needs the admin role or higher; "
        f"the key '{role}-nyckel' has the {role} role",
    }


def test_admin_role_passes(
    client: TestClient, auth: dict[str, dict[str, str]], admin_route: str
) -> None:
    response = client.get(admin_route, headers=auth["admin"])

    assert response.status_code == 200
    assert response.json() == {"name": "admin-nyckel"}


def test_keys_never_reach_a_response_or_a_log(
    client: TestClient,
    runtime: Runtime,
    keys: dict[str, str],
    admin_route: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "gk_" + "x" * 43
    attempts = [
        (ENERGY, PERIOD, keys["viewer"]),
        (ENERGY, {**PERIOD, "format": "csv"}, keys["operator"]),
        (ENERGY, {**PERIOD, "by": "floor"}, keys["viewer"]),
        (ENERGY, {"to": "2026-04-01"}, keys["viewer"]),
        (admin_route, {}, keys["viewer"]),
        (admin_route, {}, keys["admin"]),
        ("/api/v1/nowhere", {}, keys["admin"]),
        (ENERGY, PERIOD, wrong_key),
        ("/health", {}, keys["admin"]),
    ]
    runtime.state.revoke_api_key("operator-nyckel")
    attempts.append((ENERGY, PERIOD, keys["operator"]))

    responses = [
        client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
        for path, params, key in attempts
    ]

    assert {r.status_code for r in responses} == {200, 400, 401, 403, 404}
    secrets = [*keys.values(), wrong_key]
    for response in responses:
        seen = response.text + "".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in secrets:
            assert secret not in seen
            assert secret[3:] not in seen
    assert "rejected a wrong or revoked API key" in caplog.text
    for secret in secrets:
        assert secret[3:] not in caplog.text
