"""A batch's rollup rows for the SQLite store (gronkoll/stores/sqlite_rollups.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from gronkoll.stores.base import Attribution
from gronkoll.stores.sqlite_rollups import rollup_rows


def test_rollup_rows_sum_devices_into_site_group_kind_and_local_days() -> None:
    h0 = int(datetime(2026, 3, 1, 22, tzinfo=UTC).timestamp()) // 3600  # 23:00 in Stockholm

    def local_day(hour: int) -> int:  # UTC+1: hour h0 ends 1 March, h0 + 1 begins 2 March
        return 1 if hour <= h0 else 2

    hourly = {
        ("electricity", "a"): {h0: 1.0, h0 + 1: 2.0},
        ("electricity", "b"): {h0: 4.0},
        ("heat", "a"): {h0 + 1: 8.0},
        ("electricity", "sub"): {h0: 16.0},  # metered by another device: no site sum
    }
    attribution = {
        "a": Attribution("s1", "g", "pc"),
        "b": Attribution("s2", "g", "pc"),
        "sub": Attribution(None, "g", "meter"),
    }
    hours, days = rollup_rows(hourly, attribution, local_day)
    assert sorted(hours) == sorted(
        [
            (0, 0, h0, "a", 1.0),
            (0, 0, h0 + 1, "a", 2.0),
            (0, 0, h0, "b", 4.0),
            (0, 0, h0, "sub", 16.0),
            (1, 0, h0 + 1, "a", 8.0),
            (0, 1, h0, "s1", 1.0),
            (0, 1, h0 + 1, "s1", 2.0),
            (0, 1, h0, "s2", 4.0),
            (1, 1, h0 + 1, "s1", 8.0),
            (0, 2, h0, "g", 21.0),
            (0, 2, h0 + 1, "g", 2.0),
            (1, 2, h0 + 1, "g", 8.0),
            (0, 3, h0, "pc", 5.0),
            (0, 3, h0 + 1, "pc", 2.0),
            (0, 3, h0, "meter", 16.0),
            (1, 3, h0 + 1, "pc", 8.0),
        ]
    )
    assert sorted(days) == sorted(
        [
            (0, 0, 1, "a", 1.0),
            (0, 0, 2, "a", 2.0),
            (0, 0, 1, "b", 4.0),
            (0, 0, 1, "sub", 16.0),
            (1, 0, 2, "a", 8.0),
            (0, 1, 1, "s1", 1.0),
            (0, 1, 2, "s1", 2.0),
            (0, 1, 1, "s2", 4.0),
            (1, 1, 2, "s1", 8.0),
            (0, 2, 1, "g", 21.0),
            (0, 2, 2, "g", 2.0),
            (1, 2, 2, "g", 8.0),
            (0, 3, 1, "pc", 5.0),
            (0, 3, 2, "pc", 2.0),
            (0, 3, 1, "meter", 16.0),
            (1, 3, 2, "pc", 8.0),
        ]
    )


def test_a_day_row_sums_the_hours_of_its_day() -> None:
    hourly = {("electricity", "a"): {10: 0.1, 11: 0.2, 12: 0.3}}
    _, days = rollup_rows(hourly, {"a": Attribution(None, "g", "pc")}, lambda hour: 7)
    assert days[0] == (0, 0, 7, "a", 0.0 + 0.1 + 0.2 + 0.3)
    assert days[1] == (0, 2, 7, "g", 0.0 + 0.1 + 0.2 + 0.3)
