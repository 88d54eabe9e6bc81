"""check-config summarises the shutdown section: policies, targets, calendar, maintenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from gronkoll.cli import main

KEY = "0123456789abcdef0123456789abcdef-secret"
SCHOOL = f"""\
municipality: {{name: Exempelby, timezone: Europe/Stockholm}}
sites:
  - {{id: skola1, kind: school}}
  - {{id: skola2, kind: school}}
groups:
  - {{id: elevdatorer, site: skola1}}
  - {{id: personal, site: skola1}}
devices:
  - {{id: pc-1, site: skola1, group: elevdatorer, kind: pc}}
  - {{id: pc-2, site: skola1, group: elevdatorer, kind: pc}}
  - {{id: pc-3, site: skola1, group: elevdatorer, kind: pc}}
  - {{id: pc-4, site: skola1, group: personal, kind: pc}}
  - {{id: server-1, site: skola1, group: elevdatorer, kind: server}}
  - {{id: pc-9, site: skola2, kind: pc}}
shutdown:
  signing_keys: {{skola1: "{KEY}", skola2: "{KEY}"}}
  policies:
    - name: skolor-kvall
      groups: [elevdatorer, personal]
      exempt_devices: [pc-3]
      exempt_groups: [personal]
      shutdown: "30 18 * * mon-thu"
      maintenance:
        - {{name: patchar, wake: "0 2 * * wed", shutdown_after_minutes: 45}}
    - name: skolor-fredag
      groups: [elevdatorer]
      shutdown: "0 15 * * fri"
      calendar: none
      audit_only: true
    - name: skola2-patch
      sites: [skola2]
      maintenance:
        - {{name: natt, wake: "0 3 1 * *"}}
  breaks:
    - {{name: sportlov, from: 2027-02-22, to: 2027-02-26}}
    - {{name: påsklov, from: 2027-03-29, to: 2027-04-02}}
  study_days: [2027-05-14, 2027-01-07]
"""


def check_config(capsys: pytest.CaptureFixture[str], path: Path) -> list[str]:
    assert main(["-c", str(path), "check-config"]) == 0
    return capsys.readouterr().out.splitlines()


def test_check_config_lists_each_policy_its_targets_calendar_and_windows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(SCHOOL, encoding="utf-8")
    out = check_config(capsys, path)
    start = out.index(
        "  shutdown policies: 3 (local time Europe/Stockholm; signing keys for 2 sites)"
    )
    assert out[start + 1 : start + 11] == [
        '    skolor-kvall: shuts down at "30 18 * * mon-thu", 2 computers (and 2 exempt), '
        "calendar se-school",
        '      maintenance patchar: wakes at "0 2 * * wed", shuts down 45 min later',
        '    skolor-fredag: shuts down at "0 15 * * fri", 3 computers, calendar none, '
        "audit only (sends nothing)",
        "    skola2-patch: no shutdown of its own, 1 computer, calendar se-school",
        '      maintenance natt: wakes at "0 3 1 * *", shuts down 60 min later',
        "  school calendar: 2 breaks, 2 study days (skipped by policies with calendar "
        "se-school, as are Swedish public holidays)",
        "    sportlov: 2027-02-22 to 2027-02-26",
        "    påsklov: 2027-03-29 to 2027-04-02",
        "    study days: 2027-01-07, 2027-05-14",
        "  API: http://127.0.0.1:8000",
    ]
    assert not any(KEY in line for line in out)  # keys are counted, never shown


def test_check_config_says_nothing_of_shutdowns_when_there_are_none(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    out = check_config(capsys, fleet_config)
    assert not any("shutdown" in line or "calendar" in line for line in out)
    assert out[-1] == "  API: http://127.0.0.1:8000"
