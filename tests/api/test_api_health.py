"""GET /health: open, reports the version, and 503 when a store cannot be opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

import gronkoll
from gronkoll.api import create_app
from gronkoll.settings import Settings


def test_health_needs_no_key(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": gronkoll.__version__}


def blocked_store(tmp_path: Path, make_settings: Callable[..., Settings]) -> Settings:
    """Settings whose store folder sits under a plain file, so it cannot be created."""
    (tmp_path / "blocked").write_text("a file where the store's folder should be\n")
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    return make_settings(store={"path": "blocked/data", "state_url": state_url})


def test_health_is_503_when_the_store_folder_cannot_be_made(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = blocked_store(tmp_path, make_settings)

    with TestClient(create_app(settings)) as client:
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "error": "store_unavailable",
        "detail": response.json()["detail"],
    }
    assert "store" in response.json()["detail"]


def test_health_is_503_when_the_store_file_is_not_a_database(settings: Settings) -> None:
    settings.store_path.mkdir(parents=True)
    (settings.store_path / "timeseries.db").write_bytes(b"not SQLite, just text\n" * 100)

    with TestClient(create_app(settings)) as client:
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"


def test_health_recovers_once_the_store_can_be_opened(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = blocked_store(tmp_path, make_settings)

    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 503
        (tmp_path / "blocked").unlink()
        assert client.get("/health").status_code == 200
