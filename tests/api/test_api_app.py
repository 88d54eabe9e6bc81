"""The app factory: nothing opened before a request needs it, and closing what it opened."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient

from gronkoll.api import create_app
from gronkoll.reports import energy_report, to_json
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings
from gronkoll.timeparse import parse_report_time


def test_creating_the_app_opens_nothing(settings: Settings) -> None:
    create_app(settings)

    assert not settings.store_path.exists()


def test_shutdown_closes_the_runtime_the_app_opened(settings: Settings) -> None:
    wal_files = [settings.store_path / "timeseries.db-wal", settings.store_path / "state.db-wal"]

    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert all(f.exists() for f in wal_files), "open SQLite files in WAL mode"

    # SQLite removes a WAL file when the last connection to its database closes.
    assert not any(f.exists() for f in wal_files)


def test_shutdown_leaves_a_callers_runtime_open(settings: Settings, runtime: Runtime) -> None:
    store = runtime.store

    with TestClient(create_app(settings, runtime)) as client:
        assert client.get("/health").status_code == 200

    assert store.counts()["readings"] > 0


def test_concurrent_first_requests_open_one_runtime_and_agree(
    settings: Settings, runtime: Runtime, auth: dict[str, dict[str, str]]
) -> None:
    tz = runtime.settings.tz
    params = [
        {"from": f"2026-03-{day}", "to": "2026-04-01", "by": by, "bucket": bucket}
        for day in (28, 29, 30)
        for by in ("site", "device", "kind")
        for bucket in ("hour", "day")
    ]
    expected = [
        to_json(
            energy_report(
                runtime.store,
                runtime.factors,
                tz,
                start_ms=parse_report_time(p["from"], tz, option="--from"),
                end_ms=parse_report_time(p["to"], tz, option="--to"),
                by=p["by"],
                bucket=p["bucket"],
            ),
            tz,
        )
        for p in params
    ]

    app = create_app(settings)  # its own runtime: the first requests race to open it

    with TestClient(app) as client, ThreadPoolExecutor(max_workers=8) as pool:

        def fetch(p: dict[str, str]) -> object:
            return client.get("/api/v1/energy", params=p, headers=auth["viewer"]).json()

        bodies = list(pool.map(fetch, params * 3))

    assert bodies == expected * 3
