"""One contract for the state database, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gronkoll.errors import StoreError
from gronkoll.statedb import IntegrationState, StateDB

pytestmark = pytest.mark.integration


def test_migrations_create_the_schema_and_are_idempotent(state_db: StateDB) -> None:
    again = StateDB(state_db.url)  # a second start migrates nothing and fails on nothing
    again.close()
    assert state_db.list_api_keys() == []


def test_api_keys_are_stored_hashed_verified_and_revoked(state_db: StateDB) -> None:
    key = state_db.create_api_key("grafana", "viewer")
    record = state_db.verify_api_key(key)
    assert record is not None and record.role == "viewer" and record.last_used_at is not None
    assert state_db.verify_api_key(key + "x") is None
    assert all(k.key_hash != key and key not in k.prefix + "..." for k in state_db.list_api_keys())
    with pytest.raises(StoreError, match="already exists"):
        state_db.create_api_key("grafana", "admin")
    with pytest.raises(StoreError, match="unknown role"):
        state_db.create_api_key("other", "superuser")
    assert state_db.revoke_api_key("grafana") and state_db.verify_api_key(key) is None
    assert not state_db.revoke_api_key("nobody")


def test_integration_state_round_trips(state_db: StateDB) -> None:
    first = {"series": {"power_w": [1, 2.5, None, 0.0]}, "covered_since": None, "power_since": 1}
    state_db.save_integration_states({"pc-1": first, "pc-2": first}.items())
    second = {**first, "power_since": 7}
    state_db.save_integration_states({"pc-1": second}.items())
    assert state_db.load_integration_states() == {"pc-1": second, "pc-2": first}


def test_many_integration_states_are_inserted_and_replaced_in_one_save(state_db: StateDB) -> None:
    # More devices than one statement carries, as the collector saves them: (device, state)
    # pairs; a device given twice keeps the later state.
    def state(t: int) -> dict[str, object]:
        return {"series": {"power_w": [t, t / 7, None, 0.0]}, "power_since": t}

    state_db.save_integration_states((f"d{i:03d}", state(i)) for i in range(150))
    again = [(f"d{i:03d}", state(i + 1000)) for i in range(100, 230)]
    state_db.save_integration_states([("d000", state(5)), *again, ("d000", state(6))])
    expected = {f"d{i:03d}": state(i) for i in range(1, 100)}
    expected |= {f"d{i:03d}": state(i + 1000) for i in range(100, 230)}
    assert state_db.load_integration_states() == expected | {"d000": state(6)}


def test_integration_state_rows_keep_their_format_and_time(state_db: StateDB) -> None:
    # Rows as every version wrote them: compact JSON text and the time of the save, so a
    # database saved by an earlier version loads, and one saved now loads in an earlier one.
    before = datetime.now(UTC)
    older = '{"series":{"power_w":[5,1.5,null,0.0]},"covered_since":null,"power_since":5}'
    with state_db.session() as s, s.begin():
        s.add(IntegrationState(device_id="pc-old", state=older, updated_at=before))
    state = {"series": {"power_w": [9, 2.25, 8, 0.5]}, "covered_since": 3, "delta_since": None}
    state_db.save_integration_states({"pc-old": state, "pc-new": state}.items())
    with state_db.session() as s:
        rows = {r.device_id: r for r in s.scalars(select(IntegrationState))}
    assert rows["pc-new"].state == json.dumps(state, separators=(",", ":"))
    assert rows["pc-old"].state == rows["pc-new"].state
    for row in rows.values():
        stamp = row.updated_at.replace(tzinfo=row.updated_at.tzinfo or UTC)
        assert before <= stamp <= datetime.now(UTC)
    state_db.save_integration_states({"pc-other": state}.items())
    assert state_db.load_integration_states() == {
        d: state for d in ("pc-old", "pc-new", "pc-other")
    }
