"""A small municipality with real readings across the spring DST change, keys and an app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from gronkoll.api import create_app
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings, parse_settings

QUARTER_MS = 15 * 60 * 1000
# 2026-03-28 00:00 CET to 2026-04-01 00:00 CEST: Europe/Stockholm moves its clocks from
# 02:00 to 03:00 on 2026-03-29, so that local day has 23 hours.
FIRST_MS = int(datetime(2026, 3, 27, 23, tzinfo=UTC).timestamp() * 1000)
END_MS = int(datetime(2026, 3, 31, 22, tzinfo=UTC).timestamp() * 1000)
PC_W = 60.0  # elev-pc-1 draws this all the time: 1.44 kWh a 24-hour day, 1.38 on 29 March
PDU_WH_PER_QUARTER = 100.0  # 400 W

CONFIG: dict[str, Any] = {
    "municipality": {"name": "Testby kommun", "timezone": "Europe/Stockholm"},
    "sites": [
        {"id": "norrskolan", "name": "Norrskolan", "kind": "school"},
        {"id": "stadshuset", "name": "Stadshuset", "kind": "office"},
    ],
    "groups": [{"id": "it-drift", "name": "IT-drift"}],
    "devices": [
        {"id": "pdu-1", "site": "stadshuset", "group": "it-drift", "kind": "pdu"},
        {"id": "elev-pc-1", "site": "norrskolan", "kind": "pc"},
        {"id": "matare-1", "site": "norrskolan", "kind": "meter"},
    ],
}


def readings() -> list[tuple[str, str, int, float]]:
    """Every 15 minutes: a PDU energy counter, a PC at constant power, a varying meter."""
    out: list[tuple[str, str, int, float]] = []
    for i, t in enumerate(range(FIRST_MS, END_MS + 1, QUARTER_MS)):
        out.append(("pdu-1", "energy_wh_total", t, 1_000_000 + i * PDU_WH_PER_QUARTER))
        out.append(("elev-pc-1", "power_w", t, PC_W))
        out.append(("matare-1", "power_w", t, 800.0 + (i % 4) * 150.0))
    return out


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings as if read from tmp_path/gronkoll.yaml, with top-level keys overridden."""

    def make(**overrides: Any) -> Settings:
        return parse_settings({**CONFIG, **overrides}, tmp_path / "gronkoll.yaml")

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The runtime the app shares, with four days of readings ingested."""
    with Runtime(settings) as rt:
        rt.ingestor.ingest(readings())
        yield rt


@pytest.fixture
def keys(runtime: Runtime) -> dict[str, str]:
    """One key per role, by role name."""
    return {
        role: runtime.state.create_api_key(f"{role}-nyckel", role)
        for role in ("viewer", "operator", "admin")
    }


@pytest.fixture
def auth(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """The Authorization header of each role's key, by role name."""
    return {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
