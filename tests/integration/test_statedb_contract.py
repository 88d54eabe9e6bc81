"""One contract for the state database, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from sqlalchemy import create_engine, text

from gronkoll.errors import StoreError
from gronkoll.statedb import StateDB

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDB]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        pg: servers.PostgreSQL = request.getfixturevalue("postgresql")
        name = "gk_" + uuid.uuid4().hex[:12]
        admin = create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = pg.url.rsplit("/", 1)[0] + "/" + name
    db = StateDB(url)
    yield db
    db.close()


def test_migrations_create_the_schema_and_are_idempotent(state: StateDB) -> None:
    again = StateDB(state.url)  # a second start migrates nothing and fails on nothing
    again.close()
    assert state.list_api_keys() == []


def test_api_keys_are_stored_hashed_verified_and_revoked(state: StateDB) -> None:
    key = state.create_api_key("grafana", "viewer")
    record = state.verify_api_key(key)
    assert record is not None and record.role == "viewer" and record.last_used_at is not None
    assert state.verify_api_key(key + "x") is None
    assert all(k.key_hash != key and key not in k.prefix + "..." for k in state.list_api_keys())
    with pytest.raises(StoreError, match="already exists"):
        state.create_api_key("grafana", "admin")
    with pytest.raises(StoreError, match="unknown role"):
        state.create_api_key("other", "superuser")
    assert state.revoke_api_key("grafana") and state.verify_api_key(key) is None
    assert not state.revoke_api_key("nobody")


def test_integration_state_round_trips(state: StateDB) -> None:
    first = {"series": {"power_w": [1, 2.5, None, 0.0]}, "covered_since": None, "power_since": 1}
    state.save_integration_states({"pc-1": first, "pc-2": first})
    second = {**first, "power_since": 7}
    state.save_integration_states({"pc-1": second})
    assert state.load_integration_states() == {"pc-1": second, "pc-2": first}
