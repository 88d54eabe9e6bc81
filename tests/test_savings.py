"""Savings of nightly shutdowns: off intervals, the morning cap, the baseline, the report."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gronkoll.cli import main
from gronkoll.runtime import Runtime
from gronkoll.savings import baseline, close_intervals, morning_cap
from gronkoll.school_calendar import swedish_holidays
from gronkoll.settings import load_settings
from gronkoll.shutdown_results import (
    ShutdownResult,
    baseline_counts,
    load,
    mark_seen_on,
    save,
)
from gronkoll.statedb import StateDB

EVENING = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # Tuesday 18:30 in Stockholm
NIGHT = ("--from", "2026-11-24", "--to", "2026-11-25")


def report(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    """`gronkoll report shutdowns` with these options: exit code, stdout, stderr."""
    code = main(["-c", str(config), "report", "shutdowns", *args])
    out, err = capsys.readouterr()
    return code, out, err


def result(device: str, outcome: str, **kw: object) -> ShutdownResult:
    planned = kw.pop("planned_at", EVENING)
    assert isinstance(planned, datetime)
    fields: dict[str, object] = {
        "run_id": "r" * 32,
        "policy": "skolor-kvall",
        "planned_at": planned,
        "night": planned.date(),
        "device": device,
        "site": "skola1",
        "group": "elevdatorer",
        "audit_only": False,
        "outcome": outcome,
        "idle_w": 35.0,
        "off_w": 0.5,
    }
    fields.update(kw)
    return ShutdownResult(**fields)  # type: ignore[arg-type]


def test_a_night_off_ends_on_the_next_weekday_morning(fleet_config: Path) -> None:
    settings = load_settings(fleet_config)
    assert morning_cap(EVENING, settings) == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    friday = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 15:00 local
    assert morning_cap(friday, settings) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    # Summer time begins on Sunday 2027-03-28: Monday 07:00 is 05:00 UTC, not 06:00.
    before_dst = datetime(2027, 3, 26, 14, 0, tzinfo=UTC)
    assert morning_cap(before_dst, settings) == datetime(2027, 3, 29, 5, 0, tzinfo=UTC)


def test_the_morning_cap_skips_weekends_but_not_holidays_or_breaks(fleet_config: Path) -> None:
    # docs/shutdowns.md, Savings: a night off counts until the next weekday morning; public
    # holidays, breaks and study days are not skipped, so long weekends are undercounted.
    with fleet_config.open("a", encoding="utf-8") as f:
        f.write(
            "shutdown:\n  breaks: [{name: sportlov, from: 2027-02-22, to: 2027-02-26}]\n"
            "  study_days: [2026-05-15]\n"
        )
    settings = load_settings(fleet_config)
    assert swedish_holidays(2026)[date(2026, 5, 14)] == "Kristi himmelsfärdsdag"
    wednesday = datetime(2026, 5, 13, 16, 30, tzinfo=UTC)  # 18:30 CEST, the holiday's eve
    thursday_morning = datetime(2026, 5, 14, 5, 0, tzinfo=UTC)  # 07:00 CEST on the holiday
    assert morning_cap(wednesday, settings) == thursday_morning
    night = result("pc-1", "off", off_at=wednesday, until_at=thursday_morning)
    assert night.hours_off() == pytest.approx(12.5)  # not the 36.5 h to Friday 07:00
    # The Friday after, a study day, is a weekday too; its evening counts until Monday.
    study_day = datetime(2026, 5, 15, 13, 0, tzinfo=UTC)  # 15:00 CEST
    assert morning_cap(study_day, settings) == datetime(2026, 5, 18, 5, 0, tzinfo=UTC)
    weekend = result("pc-1", "off", off_at=study_day, until_at=morning_cap(study_day, settings))
    assert weekend.hours_off() == pytest.approx(64.0)
    # The Friday before sportlov counts until the Monday the break begins.
    before_break = datetime(2027, 2, 19, 14, 0, tzinfo=UTC)  # 15:00 CET
    assert morning_cap(before_break, settings) == datetime(2027, 2, 22, 6, 0, tzinfo=UTC)


def test_hours_off_run_until_seen_on_again_or_the_cap() -> None:
    off = EVENING + timedelta(minutes=1)
    cap = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert result("pc-1", "off", off_at=off, until_at=cap).hours_off() == pytest.approx(
        12.4833, 1e-3
    )
    seen = result("pc-1", "off", off_at=off, until_at=cap, on_at=off + timedelta(hours=2))
    assert seen.hours_off() == pytest.approx(2.0)
    assert result("pc-1", "non-compliant", reason="user-active").hours_off() == 0


def test_the_first_state_reading_after_going_off_closes_the_interval(fleet_config: Path) -> None:
    settings = load_settings(fleet_config)
    off = EVENING + timedelta(minutes=1)
    with Runtime(settings) as runtime:
        save(
            runtime.state, [result("pc-1", "off", off_at=off, until_at=morning_cap(off, settings))]
        )
        csv_path = fleet_config.parent / "on.csv"
        csv_path.write_text(
            "time,device,field,value\n"
            "2026-11-24T17:00:00Z,pc-1,state,on\n"
            "2026-11-24T21:15:00Z,pc-1,state,on\n"
            "2026-11-24T23:00:00Z,pc-1,state,idle\n",
            encoding="utf-8",
        )
        from gronkoll.importer import import_csv

        import_csv(csv_path, settings, runtime.ingestor, skip_bad=False)
        assert (
            close_intervals(runtime.state, runtime.store, settings, now=EVENING + timedelta(days=1))
            == 1
        )
        (closed,) = load(runtime.state)
        assert closed.on_at == datetime(2026, 11, 24, 21, 15, tzinfo=UTC)
        assert load(runtime.state, open_only=True) == []


@pytest.mark.integration
def test_the_baseline_is_measured_from_audit_only_runs_before_enforcement(
    state_db: StateDB, fleet_config: Path
) -> None:
    settings = load_settings(fleet_config)
    early = EVENING - timedelta(days=7)
    observed = [
        result(
            f"pc-{i}", "on" if i < 7 else "off", audit_only=True, planned_at=early, run_id="b" * 32
        )
        for i in range(10)
    ]
    later = [
        result(
            "pc-0", "on", audit_only=True, planned_at=EVENING + timedelta(days=1), run_id="c" * 32
        )
    ]  # after enforcement began: not the baseline
    save(state_db, observed[:9] + [result("pc-1", "off")] + later)
    assert baseline_counts(state_db) == (7, 9)
    configured = baseline(settings, *baseline_counts(state_db))
    assert configured.share == 0.56 and "LBNL-46930" in configured.source
    save(state_db, observed[9:])
    measured = baseline(settings, *baseline_counts(state_db))
    assert measured.share == pytest.approx(0.7) and measured.source.startswith("measured: 7 of 10")


def one_night(config: Path) -> float:
    """Store a night of three computers, one of them off; the kWh that one saved."""
    settings = load_settings(config)
    off = EVENING + timedelta(minutes=1)
    cap = morning_cap(off, settings)  # 11 h 59 min later
    with Runtime(settings) as runtime:
        save(
            runtime.state,
            [
                result("pc-1", "off", off_at=off, until_at=cap),
                result("pc-2", "non-compliant", reason="user-active"),
                result("pc-3", "non-compliant", reason="exempt", group="larare"),
            ],
        )
    return (cap - off).total_seconds() / 3600 * (35 - 0.5) / 1000 * 0.56


def test_report_shutdowns_per_night_with_kwh_sek_and_co2e(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    with fleet_config.open("a", encoding="utf-8") as f:
        f.write("shutdown: {price_sek_per_kwh: 1.5}\n")
    kwh = one_night(fleet_config)
    code, out, _ = report(capsys, fleet_config, *NIGHT, "--format", "json")
    assert code == 0
    body = json.loads(out)
    (row,) = body["rows"]
    assert row["night"] == "2026-11-24" and row["key"] == "all"
    assert (row["targeted"], row["off"]) == (3, 1)
    assert row["non_compliant_user_active"] == 1 and row["non_compliant_exempt"] == 1
    assert row["energy_kwh"] == pytest.approx(kwh, abs=1e-4)
    assert row["cost_sek"] == pytest.approx(kwh * 1.5, abs=1e-4)
    assert body["totals"]["cost_sek"] == row["cost_sek"] and body["price_sek_per_kwh"] == 1.5
    assert row["co2e_kg"] == pytest.approx(kwh * 0.090, abs=1e-4)
    assert row["co2e_market_kg"] == pytest.approx(kwh * 0.5241, abs=1e-4)
    assert body["baseline"]["counterfactual_on_share"] == 0.56
    assert body["emission_factors"]["market_based"]["gco2e_per_kwh"] == 524.10

    _, out, _ = report(capsys, fleet_config, *NIGHT, "--by", "group", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["key"], r["targeted"]) for r in rows] == [("elevdatorer", "2"), ("larare", "1")]

    _, table, _ = report(capsys, fleet_config, *NIGHT)
    assert "1 user-active, 1 exempt" in table and "LBNL-46930" in table
    assert f"{kwh:.2f}" in table
    assert f"{kwh * 1.5:.2f}" in table and "Price: 1.5 SEK/kWh" in table


def test_without_a_configured_price_the_report_gives_no_sek(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    kwh = one_night(fleet_config)
    hint = "no price configured: set shutdown.price_sek_per_kwh (your contract's SEK/kWh)"
    _, out, _ = report(capsys, fleet_config, *NIGHT, "--format", "json")
    body = json.loads(out)
    (row,) = body["rows"]
    assert row["energy_kwh"] == pytest.approx(kwh, abs=1e-4)
    assert row["cost_sek"] is None and body["totals"]["cost_sek"] is None
    assert body["price_sek_per_kwh"] is None
    assert any(hint in line for line in body["assumptions"])

    _, out, _ = report(capsys, fleet_config, *NIGHT, "--format", "csv")
    (csv_row,) = csv.DictReader(io.StringIO(out))
    assert csv_row["cost_sek"] == "" and float(csv_row["energy_kwh"]) == pytest.approx(kwh, 1e-3)

    _, table, _ = report(capsys, fleet_config, *NIGHT)
    (line,) = [t for t in table.splitlines() if t.startswith("2026-11-24")]
    assert line.split()[-3:] == [f"{kwh:.2f}", "-", f"{kwh * 0.090:.3f}"]
    assert hint in table


def test_a_report_period_must_be_dates_in_order(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    code, _, err = report(capsys, fleet_config, "--from", "2026-11-25", "--to", "2026-11-24")
    assert code == 1 and "must be after" in err
    code, _, err = report(capsys, fleet_config, "--from", "igår", "--to", "2026-11-24")
    assert code == 1 and "not a date" in err


@pytest.mark.integration
def test_results_and_their_intervals_round_trip_on_every_state_database(state_db: StateDB) -> None:
    off = EVENING + timedelta(minutes=1)
    cap = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    save(
        state_db,
        [
            result("pc-1", "off", off_at=off, until_at=cap, evidence={"agent": "off"}),
            result("pc-2", "non-compliant", reason="did-not-go-off"),
            result("pc-3", "on", audit_only=True, planned_at=EVENING + timedelta(days=1)),
        ],
    )
    assert [r.device for r in load(state_db, open_only=True)] == ["pc-1"]
    mark_seen_on(state_db, {("r" * 32, "pc-1"): off + timedelta(hours=3)})
    first, second, third = load(state_db)
    assert first.on_at == off + timedelta(hours=3) and first.hours_off() == pytest.approx(3)
    assert first.evidence == {"agent": "off"} and first.until_at == cap
    assert (second.reason, second.off_at) == ("did-not-go-off", None)
    assert third.audit_only and third.night == date(2026, 11, 25)
    assert [r.device for r in load(state_db, first=date(2026, 11, 25))] == ["pc-3"]


def test_an_unquoted_morning_time_is_refused_not_read_as_minutes(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    text = fleet_config.read_text(encoding="utf-8")
    fleet_config.write_text(text + "shutdown: {savings_until: 7:00}\n", encoding="utf-8")
    code = main(["-c", str(fleet_config), "check-config"])
    err = capsys.readouterr()[1]
    assert code == 2
    assert f"{fleet_config}: shutdown.savings_until: expected a local time in quotes" in err
    fleet_config.write_text(text + 'shutdown: {savings_until: "6:30"}\n', encoding="utf-8")
    assert load_settings(fleet_config).shutdown.savings_until.isoformat() == "06:30:00"
