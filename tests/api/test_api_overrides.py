"""/api/v1/overrides: viewers list, operators add and remove, every error in the one shape."""

from __future__ import annotations

from starlette.testclient import TestClient

from gronkoll.runtime import Runtime

URL = "/api/v1/overrides"
BODY = {"device": "elev-pc-1", "to": "2099-06-01", "reason": "nationella prov"}


def test_operators_add_and_remove_viewers_list(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    added = client.post(URL, json=BODY, headers=auth["operator"])
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["device"] == "elev-pc-1" and body["group"] is None
    assert body["to"] == "2099-05-31T22:00:00+00:00"  # local midnight, CEST
    assert body["who"] == body["created_by"] == "operator-nyckel"

    group = client.post(
        URL,
        json={
            "group": "it-drift",
            "from": "2099-01-01T08:00:00+01:00",
            "to": "2099-01-02",
            "reason": "flytt",
            "who": "Anna",
        },
        headers=auth["admin"],
    )
    assert group.status_code == 201, group.text

    listed = client.get(URL, headers=auth["viewer"])
    assert listed.status_code == 200
    assert [(o["device"], o["group"]) for o in listed.json()] == [  # by start time
        ("elev-pc-1", None),
        (None, "it-drift"),
    ]

    removed = client.delete(f"{URL}/{body['id']}", headers=auth["operator"])
    assert removed.status_code == 200 and removed.json()["id"] == body["id"]
    assert [o["group"] for o in client.get(URL, headers=auth["viewer"]).json()] == ["it-drift"]
    actions = [(r.action, r.actor) for r in runtime.state.audit_log()]
    assert actions == [
        ("override-add", "operator-nyckel"),
        ("override-add", "admin-nyckel"),
        ("override-remove", "operator-nyckel"),
    ]


def test_errors_have_the_one_shape(
    client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    cases = [
        (client.post(URL, json=BODY, headers=auth["viewer"]), 403, "forbidden"),
        (client.post(URL, json=BODY), 401, "unauthorized"),
        (client.get(URL), 401, "unauthorized"),
        (client.delete(f"{URL}/1", headers=auth["viewer"]), 403, "forbidden"),
        (
            client.post(URL, json={**BODY, "device": "pc-okand"}, headers=auth["operator"]),
            400,
            "bad_request",
        ),
        (
            client.post(URL, json={**BODY, "to": "i morgon"}, headers=auth["operator"]),
            400,
            "bad_request",
        ),
        (
            client.post(URL, json={**BODY, "colour": "red"}, headers=auth["operator"]),
            400,
            "bad_request",
        ),
        (client.delete(f"{URL}/99", headers=auth["operator"]), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error", "detail"}
        assert response.json()["error"] == code
    assert "unknown device 'pc-okand'" in cases[4][0].json()["detail"]
    assert "to" in cases[5][0].json()["detail"]
    assert runtime.state.audit_log() == []
