"""Overrides in the state database (SQLite and PostgreSQL): added, listed, removed, audited,
and the computers they exempt at an instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_shutdown_settings import ISSUE_CONFIG

from gronkoll.cli import main
from gronkoll.errors import InputError, UnknownDevice
from gronkoll.overrides import add_override, exemptions, list_overrides, remove_override
from gronkoll.settings import Settings, load_settings
from gronkoll.statedb import StateDB

NOW = datetime(2027, 2, 15, 12, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(ISSUE_CONFIG, encoding="utf-8")
    return load_settings(path)


def test_an_override_exempts_its_device_or_group_in_its_window(
    state_db: StateDB, settings: Settings
) -> None:
    one = add_override(
        state_db,
        settings,
        device="pc-9",
        start=NOW,
        end=NOW + timedelta(hours=8),
        reason="prov i morgon",
        who="Anna",
        actor="cli",
        now=NOW,
    )
    group = add_override(
        state_db,
        settings,
        group="elevdatorer",
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=2),
        reason="nationella prov",
        who="Rektor",
        actor="operator-nyckel",
        now=NOW,
    )
    assert exemptions(state_db, settings, NOW - timedelta(seconds=1)) == {}
    active = exemptions(state_db, settings, NOW + timedelta(hours=6))
    assert list(active) == ["pc-9"]
    assert "prov i morgon (Anna)" in active["pc-9"]
    assert set(exemptions(state_db, settings, NOW + timedelta(days=1, hours=6))) == {
        "pc-1",
        "pc-2",
    }
    assert exemptions(state_db, settings, NOW + timedelta(hours=8)) == {}  # the end is open

    assert [o.id for o in list_overrides(state_db)] == [one.id, group.id]
    later = NOW + timedelta(hours=9)
    assert [o.id for o in list_overrides(state_db, now=later)] == [group.id]

    removed = remove_override(state_db, group.id, actor="cli", now=NOW + timedelta(minutes=5))
    assert removed.group == "elevdatorer"
    assert exemptions(state_db, settings, NOW + timedelta(days=1, hours=6)) == {}

    log = state_db.audit_log()
    assert [(r.action, r.actor, r.device, r.reason, r.outcome) for r in log] == [
        ("override-add", "cli", "pc-9", "prov i morgon", "ok"),
        ("override-add", "operator-nyckel", None, "nationella prov", "ok"),
        ("override-remove", "cli", None, "nationella prov", "ok"),
    ]
    assert log[1].detail is not None and log[1].detail["group"] == "elevdatorer"
    assert log[2].detail is not None and log[2].detail["who"] == "Rektor"


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"device": "pc-404"}, UnknownDevice, "unknown device 'pc-404'"),
        ({"group": "larare"}, InputError, "unknown group 'larare' (known: elevdatorer)"),
        ({"device": "pc-1", "group": "elevdatorer"}, InputError, "exactly one of"),
        ({}, InputError, "exactly one of"),
        ({"device": "pc-1", "end": NOW - timedelta(hours=1)}, InputError, "before it starts"),
        ({"device": "pc-1", "reason": " "}, InputError, "needs a reason"),
    ],
)
def test_a_bad_override_is_refused_and_nothing_is_stored(
    tmp_path: Path, settings: Settings, kwargs: dict[str, object], error: type, text: str
) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    args: dict[str, object] = {
        "start": NOW,
        "end": NOW + timedelta(hours=1),
        "reason": "x",
        "who": "y",
        "actor": "cli",
        "now": NOW,
        **kwargs,
    }
    with pytest.raises(error) as err:
        add_override(db, settings, **args)  # type: ignore[arg-type]
    assert text in str(err.value)
    assert list_overrides(db) == [] and db.audit_log() == []
    with pytest.raises(InputError, match="no override with id 7"):
        remove_override(db, 7, actor="cli", now=NOW)
    db.close()


def test_override_commands(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(settings.source)
    code = main(
        [
            *("-c", config, "override", "add", "--group", "elevdatorer"),
            *("--to", "2099-06-01", "--reason", "provvecka", "--who", "Anna"),
        ]
    )
    assert code == 0
    assert "Override 1: group elevdatorer stays on from " in capsys.readouterr().out
    assert main(["-c", config, "override", "list"]) == 0
    listed = capsys.readouterr().out
    assert "group elevdatorer" in listed and "2099-06-01 00:00" in listed and "provvecka" in listed
    assert main(["-c", config, "override", "list", "--format", "json"]) == 0
    assert '"to": "2099-05-31T22:00:00+00:00"' in capsys.readouterr().out  # CEST midnight
    assert main(["-c", config, "override", "remove", "1"]) == 0
    assert "Override 1 (group elevdatorer) removed." in capsys.readouterr().out
    assert main(["-c", config, "override", "remove", "1"]) == 1
    assert "no override with id 1" in capsys.readouterr().err
    code = main(
        ["-c", config, "override", "add", "--device", "pc-x", "--to", "2099-01-01", "--reason", "r"]
    )
    assert code == 1
    assert "unknown device 'pc-x'" in capsys.readouterr().err
