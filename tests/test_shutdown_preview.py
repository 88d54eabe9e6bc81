"""`gronkoll shutdown preview`: planned shutdowns and wakes, days off, DST nights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_shutdown_settings import ISSUE_CONFIG

from gronkoll.cli import main

NIGHTLY = """\
    - name: nattlig
      devices: [pc-9]
      shutdown: "30 2 * * *"
      calendar: none
    - name: patchning
      devices: [pc-9]
      calendar: none
      maintenance:
        - {name: patchar, wake: "0 2 * * sun", shutdown_after_minutes: 90}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = ISSUE_CONFIG.replace("  breaks:\n", NIGHTLY + "  breaks:\n").replace(
        '    skola1: "', '    skola2: "0123456789abcdef0123456789abcdef"\n    skola1: "'
    )
    path = tmp_path / "gronkoll.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def preview(
    config: Path, capsys: pytest.CaptureFixture[str], policy: str, start: str, days: int
) -> list[dict[str, str]]:
    argv = ["-c", str(config), "shutdown", "preview", "--policy", policy]
    code = main([*argv, "--from", start, "--days", str(days), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    result: list[dict[str, str]] = json.loads(out)
    return result


def test_the_issue_policies_skip_sportlov(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evenings = preview(config, capsys, "skolor-kvall", "2027-02-15", 14)
    assert evenings == [
        {
            "policy": "skolor-kvall",
            "action": "shutdown",
            "local": f"2027-02-{day}T18:30:00+01:00",
            "utc": f"2027-02-{day}T17:30:00+00:00",
        }
        for day in (15, 16, 17, 18)  # Mon-Thu; the week of 22-26 February is sportlov
    ]
    fridays = preview(config, capsys, "skolor-fredag", "2027-02-15", 14)
    assert [(f["local"], f["utc"]) for f in fridays] == [
        ("2027-02-19T15:00:00+01:00", "2027-02-19T14:00:00+00:00")
    ]


def test_a_public_holiday_is_skipped(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 2027-01-06 (a Wednesday) is Trettondedag jul, a Swedish public holiday
    planned = preview(config, capsys, "skolor-kvall", "2027-01-04", 4)
    assert [p["local"][:10] for p in planned] == ["2027-01-04", "2027-01-05", "2027-01-07"]
    # summer time: the local offset follows the date
    planned = preview(config, capsys, "skolor-kvall", "2027-05-03", 1)
    assert planned[0]["local"] == "2027-05-03T18:30:00+02:00"
    assert planned[0]["utc"] == "2027-05-03T16:30:00+00:00"


def test_the_table_says_why_a_day_is_skipped(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-c", str(config), "shutdown", "preview", "--policy", "skolor-kvall"]
    assert main([*argv, "--from", "2027-01-04", "--days", "4"]) == 0
    out = capsys.readouterr().out
    assert "Mon 2027-01-04T18:30:00+01:00  2027-01-04T17:30:00+00:00  shutdown" in out
    assert "skipped Wed 2027-01-06: helgdag: Trettondedag jul" in out


def test_spring_forward_night_fires_once_at_0130_utc(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2027-03-28 has no 02:30 in Stockholm (02:00 CET jumps to 03:00 CEST): the job fires
    # once, at 02:30 on the clock as it stood before the change (CET), 01:30 UTC = 03:30 CEST.
    planned = preview(config, capsys, "nattlig", "2027-03-27", 3)
    shutdowns = [(p["local"], p["utc"]) for p in planned if p["action"] == "shutdown"]
    assert shutdowns == [
        ("2027-03-27T02:30:00+01:00", "2027-03-27T01:30:00+00:00"),
        ("2027-03-28T03:30:00+02:00", "2027-03-28T01:30:00+00:00"),
        ("2027-03-29T02:30:00+02:00", "2027-03-29T00:30:00+00:00"),
    ]


def test_fall_back_night_fires_once_at_the_first_0230(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2026-10-25 has two 02:30s (CEST, then CET): the job fires once, at the first (00:30 UTC),
    # the 02:30 on the clock as it stood before the change; the repeat is not a new 02:30.
    planned = preview(config, capsys, "nattlig", "2026-10-24", 3)
    assert [(p["local"], p["utc"]) for p in planned] == [
        ("2026-10-24T02:30:00+02:00", "2026-10-24T00:30:00+00:00"),
        ("2026-10-25T02:30:00+02:00", "2026-10-25T00:30:00+00:00"),
        ("2026-10-26T02:30:00+01:00", "2026-10-26T01:30:00+00:00"),
    ]


def test_a_maintenance_window_wakes_and_shuts_down_after_n_minutes(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sunday 2026-10-25: wake at 02:00 CEST, 90 minutes of elapsed time later is 02:30 CET
    planned = preview(config, capsys, "patchning", "2026-10-25", 1)
    assert [(p["action"], p["local"], p["utc"]) for p in planned] == [
        ("wake", "2026-10-25T02:00:00+02:00", "2026-10-25T00:00:00+00:00"),
        ("shutdown", "2026-10-25T02:30:00+01:00", "2026-10-25T01:30:00+00:00"),
    ]
    assert [p["utc"] for p in planned] == sorted(p["utc"] for p in planned)


def test_an_unknown_policy_is_an_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-c", str(config), "shutdown", "preview", "--policy", "nope"])
    assert code == 1
    assert (
        "--policy: no policy named 'nope' (known: skolor-kvall, skolor-fredag, nattlig, patchning)"
        in (capsys.readouterr().err)
    )


def test_a_29_february_policy_is_planned_four_years_ahead(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gronkoll.cron import parse_cron
    from gronkoll.school_calendar import SchoolCalendar
    from gronkoll.shutdown_plan import PolicyTrigger

    trigger = PolicyTrigger(parse_cron("0 12 29 2 *"), SchoolCalendar())
    now = datetime(2024, 3, 1, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    # a cron that only ever falls on a public holiday never fires (and says so with None)
    holiday = PolicyTrigger(parse_cron("0 12 25 12 *"), SchoolCalendar(kind="se-school"))
    assert holiday.get_next_fire_time(None, now) is None
