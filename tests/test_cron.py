"""Cron expressions read as crontab reads them, in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gronkoll.cron import parse_cron

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def weekdays_fired(expr: str) -> list[str]:
    """The weekday names of the fire times in one week (Mon 2027-05-03 to Sun 2027-05-09)."""
    trigger = parse_cron(expr, STOCKHOLM)
    now = datetime(2027, 5, 3, tzinfo=STOCKHOLM)
    fired, prev = [], None
    while (fire := trigger.get_next_fire_time(prev, now)) < datetime(2027, 5, 10, tzinfo=UTC):
        fired.append(f"{fire:%a}")
        prev = now = fire
    return fired


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("30 18 * * 1-4", ["Mon", "Tue", "Wed", "Thu"]),
        ("30 18 * * mon-thu", ["Mon", "Tue", "Wed", "Thu"]),
        ("0 15 * * 5", ["Fri"]),
        ("0 12 * * 0", ["Sun"]),
        ("0 12 * * 7", ["Sun"]),
        ("0 12 * * 5-7", ["Fri", "Sat", "Sun"]),
        ("0 12 * * fri-sun", ["Fri", "Sat", "Sun"]),
        ("0 12 * * 0,6", ["Sat", "Sun"]),
        ("0 12 * * */2", ["Tue", "Thu", "Sat", "Sun"]),  # crontab: 0,2,4,6 = sun,tue,thu,sat
        ("0 12 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_weekday_numbers_are_crontab_numbers(expr: str, days: list[str]) -> None:
    # APScheduler 3 alone would read 1-4 as Tuesday to Friday
    assert weekdays_fired(expr) == days


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("30 18 * *", "has 4 fields; expected 5"),
        ("61 18 * * *", "cron expression '61 18 * * *'"),
        ("0 18 * * 8", "weekday 8 is out of range 0-7"),
        ("0 18 * * thu-mon", "weekday range 'thu-mon' runs backwards"),
        ("0 18 1 * mon", "both a day of month and a weekday"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expr: str, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_cron(expr)
    assert problem in str(err.value)
