"""The SQLite store numbers new series in the transaction of the write that uses them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gronkoll.energy import Batch
from gronkoll.stores.base import Attribution
from gronkoll.stores.sqlite import SqliteStore

T = 1_738_569_600_000
PLACES = {"plug-1": Attribution("skola1", "ungrouped", "meter")}


def series_rows(path: Path) -> list[tuple[int, str, str]]:
    """The series table as another process sees it."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, device, field FROM series ORDER BY id").fetchall()


def batch_of(sid: int, wh: float) -> Batch:
    out = Batch(rows=[(sid, T, 100.0, T - 60_000, wh, 0)], t_min=T, t_max=T)
    out.add_hour("electricity", "plug-1", T // 3_600_000, wh)
    return out


def test_new_series_are_committed_with_the_first_write_that_uses_them(tmp_path: Path) -> None:
    path = tmp_path / "timeseries.db"
    store = SqliteStore(path, ZoneInfo("Europe/Stockholm"))
    power, energy = store.series_id("plug-1", "power_w"), store.series_id("plug-1", "energy_wh")
    assert series_rows(path) == []  # not committed one by one
    store.write(batch_of(power, 1.5), PLACES)
    assert series_rows(path) == [(power, "plug-1", "power_w"), (energy, "plug-1", "energy_wh")]
    store.close()


def test_a_series_numbered_in_a_failed_write_keeps_its_number(tmp_path: Path) -> None:
    path = tmp_path / "timeseries.db"
    store = SqliteStore(path, ZoneInfo("Europe/Stockholm"))
    sid = store.series_id("plug-1", "power_w")
    with pytest.raises(KeyError):  # a device without attribution: the write fails midway
        store.write(batch_of(sid, 1.5), {})
    assert series_rows(path) == []
    assert store.series_id("plug-1", "power_w") == sid  # the engine goes on using it
    store.write(batch_of(sid, 1.5), PLACES)
    assert series_rows(path) == [(sid, "plug-1", "power_w")]
    assert store.counts()["readings"] == 1
    store.close()
    reopened = SqliteStore(path, ZoneInfo("Europe/Stockholm"))
    assert reopened.series_id("plug-1", "power_w") == sid
    reopened.close()
