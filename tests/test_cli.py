"""The command line contract: check-config, import, report energy, apikey, events."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from gronkoll.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def report_day(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, str, str]:
    """`gronkoll report energy` for 2026-03-29 (local) with more options."""
    return run(
        capsys,
        "-c",
        str(config),
        "report",
        "energy",
        "--from",
        "2026-03-29",
        "--to",
        "2026-03-30",
        *args,
    )


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("time,device,field,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def quarter_hours(device: str, fld: str, start: str, n: int, value: str) -> list[str]:
    """n readings 15 minutes apart from a UTC start like 2026-03-28T23:00."""
    from datetime import datetime, timedelta

    t = datetime.fromisoformat(start + "+00:00")
    return [
        f"{(t + timedelta(minutes=15 * i)).isoformat().replace('+00:00', 'Z')},{device},{fld},"
        + value.format(i=i)
        for i in range(n)
    ]


# -- check-config ------------------------------------------------------------------------
def test_the_minimal_config_is_accepted_as_it_is(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    code, out, _ = run(capsys, "-c", str(minimal_config), "check-config")
    assert code == 0
    assert "OK" in out and "devices: 2 (1 meter, 1 server)" in out
    assert str(minimal_config.parent / "gronkoll-data") in out  # relative to the file's folder


def test_the_example_config_shows_every_option_and_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = Path(__file__).parent.parent / "config" / "example.yaml"
    code, out, err = run(capsys, "check-config", "-c", str(example))
    assert code == 0, err


def test_config_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], minimal_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRONKOLL_CONFIG", str(minimal_config))
    code, out, _ = run(capsys, "check-config")
    assert code == 0 and "Exempelby" in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace(
                "store:",
                "  - {id: pc-1, site: skola9, kind: pc}\n"
                "  - {id: pc-2, site: skola1, kind: pc}\nstore:",
            ),
            "devices[2].site: unknown site 'skola9' (known: skola1)",
        ),
        (lambda t: t.replace("kind: server,", "kind: toaster,"), "devices[1].kind: got 'toaster'"),
        (
            lambda t: t.replace("timezone: Europe/Stockholm", "timezone: Europe/Gronkoll"),
            "municipality.timezone",
        ),
        (
            lambda t: t.replace("rated_power_w: 1000}", "rated_power_w: 1000, colour: red}"),
            "devices[1].colour: unknown key",
        ),
        (
            lambda t: t.replace("municipality:\n  name: Exempelby\n", "municipality:\n"),
            "municipality.name: required key is missing",
        ),
        (lambda t: t.replace("sites:", "sites: [\n"), "not valid YAML"),
    ],
)
def test_a_bad_config_refuses_with_file_key_and_expectation(
    capsys: pytest.CaptureFixture[str], minimal_config: Path, edit: object, message: str
) -> None:
    minimal_config.write_text(edit(minimal_config.read_text()), encoding="utf-8")  # type: ignore[operator]
    code, out, err = run(capsys, "-c", str(minimal_config), "check-config")
    assert code == 2
    assert out == ""
    assert err.startswith(f"gronkoll: {minimal_config}:")
    assert message in err
    assert "Traceback" not in err


def test_a_missing_config_file_says_where_to_look(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "-c", str(tmp_path / "nope.yaml"), "check-config")
    assert code == 2 and "no such config file" in err and "GRONKOLL_CONFIG" in err


# -- import ------------------------------------------------------------------------------
def test_import_then_report_energy_csv(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    data = write_csv(
        minimal_config.parent / "r.csv",
        quarter_hours("server-1", "power_w", "2026-03-28T23:00", 9, "400")
        + quarter_hours("meter-1", "energy_wh_total", "2026-03-28T23:00", 9, "{i}000"),
    )
    code, out, _ = run(capsys, "-c", str(minimal_config), "import", str(data))
    assert code == 0
    assert "18 rows accepted, 0 rejected" in out
    code, out, _ = report_day(
        capsys, minimal_config, "--by", "device", "--bucket", "day", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["bucket", "key", "energy_kwh", "co2e_kg"]
    got = {r["key"]: (float(r["energy_kwh"]), float(r["co2e_kg"])) for r in rows}
    assert got["server-1"] == pytest.approx((0.8, 0.8 * 0.09))  # 400 W for 2 h, 90 g/kWh
    assert got["meter-1"] == pytest.approx((8.0, 8.0 * 0.09))
    assert {r["bucket"] for r in rows} == {"2026-03-29"}


def test_a_bad_row_imports_nothing_and_names_line_and_reason(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    data = write_csv(
        minimal_config.parent / "r.csv",
        [
            "2026-03-29T00:00:00Z,server-1,power_w,400",
            "2026-03-29T00:15:00Z,server-9,power_w,400",
            "2026-03-29T00:30:00,server-1,power_w,400",
            "2026-03-29T00:45:00Z,server-1,power_kw,1",
            "2026-03-29T01:00:00Z,server-1,power_w,lots",
            "2026-03-29T01:15:00Z,server-1,state,napping",
            "2026-03-29T01:30:00Z,server-1,power_w",
            "2026-03-29T01:45:00Z,server-1,power_w,-3",
            "2026-03-29T02:00:00Z,server-1,power_w,400",
        ],
    )
    code, out, _ = run(capsys, "-c", str(minimal_config), "import", str(data))
    assert code == 1
    assert "2 rows accepted, 7 rejected" in out
    for line, reason in [
        (3, "unknown device 'server-9'"),
        (4, "'2026-03-29T00:30:00' has no time zone offset"),
        (5, "unknown field 'power_kw'"),
        (6, "value 'lots' is not a number"),
        (7, "state 'napping' is not one of on, idle, sleep, off"),
        (8, "expected 4 columns"),
        (9, "power_w cannot be negative"),
    ]:
        assert f"line {line}: {reason}" in out
    assert "Nothing imported" in out
    code, out, _ = report_day(capsys, minimal_config, "--format", "csv")
    assert out == "bucket,key,energy_kwh,co2e_kg\n"

    code, out, _ = run(capsys, "-c", str(minimal_config), "import", str(data), "--skip-bad")
    assert code == 0 and "Imported 2 readings" in out


def test_a_file_without_the_header_is_refused(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    data = minimal_config.parent / "r.csv"
    data.write_text("when,who,what,value\n", encoding="utf-8")
    code, _, err = run(capsys, "-c", str(minimal_config), "import", str(data))
    assert code == 1 and "line 1: expected the header time,device,field,value" in err


def test_integration_state_survives_a_restart(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    """Two imports (two processes, as far as Gronkoll knows) count the same as one."""
    readings = quarter_hours("meter-1", "energy_wh_total", "2026-03-28T23:00", 9, "{i}000")
    first = write_csv(minimal_config.parent / "a.csv", readings[:5])
    second = write_csv(minimal_config.parent / "b.csv", readings[5:])
    assert run(capsys, "-c", str(minimal_config), "import", str(first))[0] == 0
    assert run(capsys, "-c", str(minimal_config), "import", str(second))[0] == 0
    # importing the same file again adds nothing
    assert run(capsys, "-c", str(minimal_config), "import", str(second))[0] == 0
    _, out, _ = report_day(capsys, minimal_config, "--bucket", "none", "--format", "json")
    doc = json.loads(out)
    assert doc["rows"] == [{"bucket": "all", "key": "skola1", "energy_kwh": 8.0, "co2e_kg": 0.72}]


def test_a_locked_store_gives_one_message_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    data = write_csv(
        fleet_config.parent / "r.csv",
        quarter_hours("server-1", "power_w", "2026-03-28T23:00", 5, "400"),
    )
    assert run(capsys, "-c", str(fleet_config), "import", str(data))[0] == 0
    more = write_csv(
        fleet_config.parent / "m.csv",
        quarter_hours("server-1", "power_w", "2026-03-29T00:15", 5, "400"),
    )
    db = fleet_config.parent / "gronkoll-data" / "timeseries.db"
    before = sqlite3.connect(db).execute("SELECT count(*) FROM readings").fetchone()[0]
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        code, out, err = run(capsys, "-c", str(fleet_config), "import", str(more))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1
    assert "locked by another process" in err and str(db) in err
    assert sqlite3.connect(db).execute("SELECT count(*) FROM readings").fetchone()[0] == before
    # once the lock is gone the same file imports, and the energy is counted once
    assert run(capsys, "-c", str(fleet_config), "import", str(more))[0] == 0
    _, out, _ = report_day(
        capsys, fleet_config, "--by", "device", "--bucket", "none", "--format", "csv"
    )
    assert "all,server-1,0.900000," in out  # 23:00 to 01:15 UTC at 400 W


# -- report ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bucket", "labels"),
    [
        ("hour", ["2026-03-29T00:00+01:00", "2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00"]),
        ("day", ["2026-03-29"]),
        ("week", ["2026-W13"]),
        ("month", ["2026-03"]),
        ("none", ["all"]),
    ],
)
def test_bucket_labels_are_local_time(
    capsys: pytest.CaptureFixture[str], minimal_config: Path, bucket: str, labels: list[str]
) -> None:
    data = write_csv(
        minimal_config.parent / "r.csv",
        quarter_hours("server-1", "power_w", "2026-03-28T23:00", 13, "400"),
    )
    run(capsys, "-c", str(minimal_config), "import", str(data))
    code, out, _ = run(
        capsys, "-c", str(minimal_config), "report", "energy", "--from", "2026-03-29T00:00",
        "--to", "2026-03-29T04:00+02:00", "--bucket", bucket, "--format", "csv",
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["bucket"] for r in rows] == labels
    assert sum(float(r["energy_kwh"]) for r in rows) == pytest.approx(1.2)  # 3 hours at 400 W


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-30", "--to", "2026-03-29"], "--to must be after --from"),
        (["--from", "2026-13-01", "--to", "2026-03-29"], "--from '2026-13-01': not a date"),
        (
            ["--from", "yesterday", "--to", "2026-03-29"],
            "expected a date (YYYY-MM-DD) or an ISO 8601 time",
        ),
        (["--from", "2026-03-29T10:30", "--to", "2026-03-30"], "--from must fall on a whole hour"),
    ],
)
def test_bad_report_dates_give_one_clear_message(
    capsys: pytest.CaptureFixture[str], minimal_config: Path, args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "-c", str(minimal_config), "report", "energy", *args)
    assert code == 1 and out == "" and message in err


def test_an_unknown_grouping_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "-c",
                str(minimal_config),
                "report",
                "energy",
                "--from",
                "2026-03-29",
                "--to",
                "2026-03-30",
                "--by",
                "floor",
            ]
        )
    assert exc.value.code == 2
    assert "invalid choice: 'floor'" in capsys.readouterr().err


def test_table_report_prints_both_scope2_methods_and_sources(
    capsys: pytest.CaptureFixture[str], fleet_config: Path
) -> None:
    data = write_csv(
        fleet_config.parent / "r.csv",
        quarter_hours("pc-1", "state", "2026-03-29T07:00", 9, "on")
        + quarter_hours("pc-2", "state", "2026-03-29T07:00", 9, "off"),
    )
    run(capsys, "-c", str(fleet_config), "import", str(data))
    code, out, _ = report_day(capsys, fleet_config, "--by", "group")
    assert code == 0
    assert "elevdatorer" in out
    assert "0.121" in out  # 2 h × (60 W + 0.5 W)
    assert "location-based: 90 g CO2e/kWh" in out and "IVL" in out
    assert "Market-based" in out and "Energimarknadsinspektionen" in out


def test_hourly_factors_are_matched_hour_by_hour(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    (minimal_config.parent / "se3.csv").write_text(
        "time,gco2e_per_kwh\n2026-03-29T00:00:00Z,20\n2026-03-29T01:00:00Z,40\n", encoding="utf-8"
    )
    minimal_config.write_text(
        minimal_config.read_text()
        + "emissions:\n  hourly: {path: se3.csv, source: test series for SE3}\n",
        encoding="utf-8",
    )
    data = write_csv(
        minimal_config.parent / "r.csv",
        quarter_hours("server-1", "power_w", "2026-03-29T00:00", 13, "1000"),
    )
    run(capsys, "-c", str(minimal_config), "import", str(data))
    _, out, _ = report_day(capsys, minimal_config, "--bucket", "none", "--format", "json")
    doc = json.loads(out)
    # 1 kWh at 20 g, 1 kWh at 40 g, 1 kWh with no hourly value: the annual 90 g
    assert doc["rows"][0]["co2e_kg"] == pytest.approx(0.15)
    assert doc["methodology"]["hourly"]["energy_share_matched"] == pytest.approx(2 / 3)
    assert doc["methodology"]["market_based"]["co2e_kg"] == pytest.approx(3 * 0.5241)


# -- API keys and events -----------------------------------------------------------------
def test_apikey_is_printed_once_and_stored_hashed(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    code, out, err = run(
        capsys,
        "-c",
        str(minimal_config),
        "apikey",
        "create",
        "--name",
        "grafana",
        "--role",
        "viewer",
    )
    key = out.strip()
    assert code == 0 and key.startswith("gk_") and len(key) > 40
    assert "shown only this once" in err
    state = (minimal_config.parent / "gronkoll-data" / "state.db").read_bytes()
    assert key.encode() not in state
    code, out, _ = run(capsys, "-c", str(minimal_config), "apikey", "list")
    assert "grafana\tviewer" in out and key not in out
    code, _, err = run(capsys, "-c", str(minimal_config), "apikey", "create", "--name", "grafana")
    assert code == 1 and "already exists" in err
    assert run(capsys, "-c", str(minimal_config), "apikey", "revoke", "--name", "grafana")[0] == 0
    assert "revoked" in run(capsys, "-c", str(minimal_config), "apikey", "list")[1]


def test_events_show_what_the_engine_recorded(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    data = write_csv(
        minimal_config.parent / "r.csv",
        [
            "2026-03-29T00:00:00Z,meter-1,energy_wh_total,5000",
            "2026-03-29T00:15:00Z,meter-1,energy_wh_total,0",
            "2026-03-29T00:30:00Z,meter-1,energy_wh_total,5010",
        ],
    )
    run(capsys, "-c", str(minimal_config), "import", str(data))
    code, out, _ = run(capsys, "-c", str(minimal_config), "events")
    assert code == 0
    assert (
        "2026-03-29T01:15+01:00  meter-1  glitch: energy_wh_total dropped to 0 and came back" in out
    )


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("2026-03-29T02:00", "does not exist in Europe/Stockholm"),
        ("2026-10-25T02:00", "happens twice in Europe/Stockholm"),
    ],
)
def test_local_times_a_dst_change_skips_or_repeats_need_an_offset(
    capsys: pytest.CaptureFixture[str], minimal_config: Path, start: str, message: str
) -> None:
    code, _, err = run(
        capsys, "-c", str(minimal_config), "report", "energy", "--from", start, "--to", "2026-11-01"
    )
    assert code == 1 and message in err
    ok, _, _ = run(
        capsys,
        "-c",
        str(minimal_config),
        "report",
        "energy",
        "--from",
        start + "+01:00",
        "--to",
        "2026-11-01",
    )
    assert ok == 0
