"""Every shipped profile, end to end: a real device recording served by snmpsim, polled with
`gronkoll collect --once`, and the SI values a user then sees in `gronkoll devices`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import servers
from profile_cases import CASES, Case

from gronkoll.cli import main
from gronkoll.fields import unit_of

pytestmark = pytest.mark.integration

KIND = {
    "ups": "ups",
    "pdu": "pdu",
    "idrac": "server",
    "ilo": "server",
    "host": "pc",
    "entity": "server",
}


def kind_of(profile: str) -> str:
    return next((kind for key, kind in KIND.items() if key in profile), "meter")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.community}-{c.profile}")
def test_collect_once_then_devices_shows_the_recorded_values(
    case: Case, snmpsim: servers.Snmpsim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gronkoll.yaml"
    config.write_text(
        f"""\
municipality: {{name: Exempelby}}
sites: [{{id: serverrum, kind: server_room}}]
devices:
  - id: dev-1
    site: serverrum
    kind: {kind_of(case.profile)}
    profile: {case.profile}
    rated_power_w: 100000
    snmp: {{host: {snmpsim.host}, port: {snmpsim.port}, community: {case.community}, timeout_s: 5, retries: 2}}
""",
        encoding="utf-8",
    )
    assert main(["-c", str(config), "collect", "--once"]) == 0
    collect_out = capsys.readouterr().out
    assert "dev-1" in collect_out
    assert main(["-c", str(config), "devices", "--format", "json"]) == 0
    (device,) = json.loads(capsys.readouterr().out)["devices"]
    assert device["status"] == "ok", device
    assert device["profile"] == case.profile
    readings = device["readings"]
    for field, expected in case.values.items():
        assert readings[field]["value"] == pytest.approx(expected, rel=1e-9), field
        assert readings[field]["unit"] == unit_of(field)
    assert readings["reachable"]["value"] == 1
