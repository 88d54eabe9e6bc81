"""The second signal: a PC's own plug under its off power, or the PC no longer answering SNMP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from gronkoll.runtime import Runtime
from gronkoll.schedules.signals import SecondSignals, disagreement
from gronkoll.settings import load_settings
from gronkoll.statedb import StatusUpdate

SENT = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def config(tmp_path: Path) -> Path:
    data = {
        "municipality": {"name": "Exempelby"},
        "sites": [{"id": "skola1"}],
        "devices": [
            {"id": "plug-1", "site": "skola1", "kind": "meter"},
            {"id": "pc-1", "site": "skola1", "kind": "pc", "metered_by": "plug-1"},
            {"id": "hall", "site": "skola1", "kind": "meter"},  # meters two PCs: no signal
            {"id": "pc-2", "site": "skola1", "kind": "pc", "metered_by": "hall"},
            {"id": "pc-3", "site": "skola1", "kind": "pc", "metered_by": "hall"},
            {
                "id": "pc-4",
                "site": "skola1",
                "kind": "pc",
                "snmp": {"host": "127.0.0.1", "community": "public"},
            },
        ],
    }
    path = tmp_path / "gronkoll.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def status(device: str, success: datetime | None, error: datetime | None) -> StatusUpdate:
    return StatusUpdate(
        device_id=device,
        last_seen=success,
        last_success=success,
        last_error="timeout",
        last_error_at=error,
        consecutive_failures=1 if error else 0,
        last_poll_at=error,
        last_duration_s=2.0,
        profile=None,
        profile_reason=None,
        problems=(),
        last_problem=None,
        last_problem_at=None,
    )


def test_a_plug_of_its_own_says_off_under_off_power_plus_the_margin(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path))
    with Runtime(settings) as rt:
        signals = SecondSignals(settings, rt.store, rt.state)
        pcs = [d for d in settings.devices if d.kind == "pc"]
        assert [signals.has_signal(d) for d in pcs] == [True, False, False, True]
        rt.ingestor.ingest([("plug-1", "power_w", ms(SENT - timedelta(minutes=5)), 34.0)])
        plug = signals.read([pcs[0]], SENT)["pc-1"]
        assert plug.says is None  # nothing since the command
        rt.ingestor.ingest([("plug-1", "power_w", ms(SENT + timedelta(seconds=40)), 1.4)])
        plug = signals.read([pcs[0]], SENT)["pc-1"]
        assert (plug.says, plug.at) == ("off", SENT + timedelta(seconds=40))
        assert "under 1.5 W" in plug.detail  # off_w 0.5 W + margin 1 W
        rt.ingestor.ingest([("plug-1", "power_w", ms(SENT + timedelta(seconds=80)), 2.0)])
        plug = signals.read([pcs[0]], SENT)["pc-1"]
        assert plug.says == "on"  # sleep draws more than off
        assert disagreement("off", plug) == f"the agent says off, but {plug.detail}"
        assert disagreement("on", plug) is None


def test_a_pc_that_stops_answering_snmp_after_the_command_says_off(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path))
    pc = settings.device("pc-4")
    assert pc is not None
    with Runtime(settings) as rt:
        signals = SecondSignals(settings, rt.store, rt.state)
        before = SENT - timedelta(minutes=1)
        rt.state.save_device_statuses([status("pc-4", before, None)])
        assert signals.read([pc], SENT)["pc-4"].says is None
        rt.state.save_device_statuses([status("pc-4", before, SENT + timedelta(seconds=60))])
        snmp = signals.read([pc], SENT)["pc-4"]
        assert (snmp.kind, snmp.says) == ("snmp", "off")
        rt.state.save_device_statuses([status("pc-4", SENT + timedelta(seconds=90), None)])
        assert signals.read([pc], SENT)["pc-4"].says == "on"
