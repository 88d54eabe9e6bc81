"""The audit log: appended in order, read back by time, on SQLite and PostgreSQL, and printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from gronkoll.audit import AuditRecord
from gronkoll.cli import main
from gronkoll.settings import load_settings
from gronkoll.statedb import StateDB

T0 = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # 18:30 in Stockholm


def records() -> list[AuditRecord]:
    """A policy's run: a command sent and verified, and a computer left on for its user."""
    run = partial(AuditRecord, actor="scheduler", policy="skolor-kvall")
    return [
        run(
            t=T0,
            device="pc-1",
            action="shutdown",
            command_id="a" * 32,
            outcome="sent",
            detail={"attempt": 1},
        ),
        run(
            t=T0 + timedelta(seconds=40),
            device="pc-1",
            action="verify",
            command_id="a" * 32,
            outcome="off",
        ),
        run(
            t=T0 + timedelta(minutes=5),
            device="pc-2",
            action="verify",
            outcome="non-compliant",
            reason="user-active",
        ),
    ]


@pytest.mark.integration
def test_audit_records_come_back_in_order_and_by_time(state_db: StateDB) -> None:
    state_db.audit_many(records()[:2])
    state_db.audit(
        **{k: v for k, v in records()[2].as_dict().items() if k not in ("id", "t")},
        t=records()[2].t,
    )
    everything = state_db.audit_log()
    assert [(r.device, r.action, r.outcome) for r in everything] == [
        ("pc-1", "shutdown", "sent"),
        ("pc-1", "verify", "off"),
        ("pc-2", "verify", "non-compliant"),
    ]
    assert everything[0].detail == {"attempt": 1}
    assert everything[0].t == T0 and everything[0].t.tzinfo is not None
    assert everything[2].reason == "user-active"
    window = state_db.audit_log(start=T0 + timedelta(seconds=1), end=T0 + timedelta(minutes=5))
    assert [r.action for r in window] == ["verify"]
    assert [r.device for r in state_db.audit_log(device="pc-2")] == ["pc-2"]
    assert [r.outcome for r in state_db.audit_log(limit=2)] == ["off", "non-compliant"]


def test_an_audit_time_without_a_zone_is_refused(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with pytest.raises(ValueError, match="no time zone"):
            db.audit(t=T0.replace(tzinfo=None), actor="cli", action="shutdown", outcome="sent")
        assert db.audit_log() == []
    finally:
        db.close()


def test_gronkoll_audit_prints_a_period_as_table_and_json(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    settings = load_settings(fleet_config)
    db = StateDB(settings.state_url)
    db.audit_many(records())
    db.close()

    code = main(["-c", str(fleet_config), "audit", "--from", "2026-11-24", "--to", "2026-11-25"])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "time",
        "actor",
        "policy",
        "device",
        "action",
        "outcome",
        "reason",
        "command",
    ]
    assert lines[1].split()[:6] == [
        "2026-11-24T18:30:00+01:00",
        "scheduler",
        "skolor-kvall",
        "pc-1",
        "shutdown",
        "sent",
    ]
    assert "user-active" in lines[3]

    code = main(
        ["-c", str(fleet_config), "audit", "--from", "2026-11-24T18:31", "--format", "json"]
    )
    out, _ = capsys.readouterr()
    items = json.loads(out)
    assert [i["device"] for i in items] == ["pc-2"]
    assert items[0]["t"] == "2026-11-24T18:35:00+01:00"
    assert items[0]["reason"] == "user-active"

    code = main(["-c", str(fleet_config), "audit", "--to", "2026-11-24"])
    out, _ = capsys.readouterr()
    assert code == 0 and out == "No audit records in that period.\n"
