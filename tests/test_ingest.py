"""The ingestion path under faults: a crash between store and state, a read-only store."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.reports import energy_report
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.timeparse import parse_report_time

T0 = 1_774_738_800_000  # 2026-03-28T23:00:00Z = local midnight, 29 March
Q = 900_000


def day_kwh(config: Path) -> dict[str, float]:
    settings = load_settings(config)
    tz = settings.tz
    with Runtime(settings) as rt:
        report = energy_report(
            rt.store,
            rt.factors,
            tz,
            start_ms=parse_report_time("2026-03-29", tz, option="--from"),
            end_ms=parse_report_time("2026-03-30", tz, option="--to"),
            by="device",
            bucket="none",
        )
    return {r.key: r.energy_kwh for r in report.rows}


def test_a_crash_between_store_and_saved_state_counts_nothing_twice(minimal_config: Path) -> None:
    settings = load_settings(minimal_config)
    meter = [("meter-1", "energy_wh_total", T0 + i * Q, 1000.0 * i) for i in range(9)]
    with Runtime(settings) as rt:
        rt.ingestor.ingest(meter[:3])
        state = rt.state

        def crash(states: object) -> None:
            raise StoreError("power cut")

        # The store commits the batch, then the process dies before the state is saved.
        original = state.save_integration_states
        state.save_integration_states = crash  # type: ignore[method-assign]
        with pytest.raises(StoreError):
            rt.ingestor.ingest(meter[3:6])
        state.save_integration_states = original  # type: ignore[method-assign]
    # A new process resumes from the store's newest reading, not from the older saved state.
    with Runtime(settings) as rt:
        rt.ingestor.ingest(meter[3:])  # the sender retries what it was not sure of
    assert day_kwh(minimal_config) == {"meter-1": pytest.approx(8.0)}


def test_a_failed_write_lets_the_same_readings_be_sent_again(minimal_config: Path) -> None:
    settings = load_settings(minimal_config)
    power = [("server-1", "power_w", T0 + i * Q, 400.0) for i in range(9)]
    with Runtime(settings) as rt:
        rt.ingestor.ingest(power[:4])
        store = rt.store
        original = store.write

        def refuse(*args: object) -> object:
            raise StoreUnavailable("disk full")

        store.write = refuse  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable):
            rt.ingestor.ingest(power[4:])
        store.write = original  # type: ignore[method-assign]
        rt.ingestor.ingest(power[4:])
    assert day_kwh(minimal_config) == {"server-1": pytest.approx(0.8)}


def test_a_read_only_store_gives_one_clear_message(minimal_config: Path) -> None:
    settings = load_settings(minimal_config)
    power = [("server-1", "power_w", T0 + i * Q, 400.0) for i in range(9)]
    with Runtime(settings) as rt:
        rt.ingestor.ingest(power[:4])
    db = settings.store_path / "timeseries.db"
    chattr = shutil.which("chattr")
    # As root, file modes do not stop writes; the immutable attribute does (ext4, xfs, btrfs).
    if chattr is None or subprocess.run([chattr, "+i", str(db)], capture_output=True).returncode:
        pytest.skip("cannot make a file immutable on this file system")
    try:
        with Runtime(settings) as rt, pytest.raises(StoreUnavailable) as err:
            rt.ingestor.ingest(power[4:])
        assert "cannot be written" in str(err.value) and str(db) in str(err.value)
    finally:
        subprocess.run([chattr, "-i", str(db)], check=True)
    assert day_kwh(minimal_config) == {"server-1": pytest.approx(0.3)}


def test_a_profile_counter_width_makes_a_drop_a_wrap(minimal_config: Path) -> None:
    settings = load_settings(minimal_config)
    top = 2.0**32  # an Eaton ePDU's inputTotalWh is an Unsigned32 in Wh
    counter = [
        ("meter-1", "energy_wh_total", T0, top - 1000),
        ("meter-1", "energy_wh_total", T0 + Q, 500.0),
    ]
    with Runtime(settings) as rt:
        rt.ingestor.set_counter_modulus("meter-1", top)
        result = rt.ingestor.ingest(counter)
    assert result.energy_wh == pytest.approx(1500)
    with Runtime(settings) as rt:
        assert [e[2] for e in rt.store.events("meter-1")] == ["wrap"]


def test_repeats_are_dropped_only_when_asked_and_a_batch_of_only_repeats_stores_nothing(
    minimal_config: Path,
) -> None:
    settings = load_settings(minimal_config)
    meter = [("meter-1", "energy_wh_total", T0 + i * Q, 1000.0 * i) for i in range(4)]
    with Runtime(settings) as rt:
        rt.ingestor.ingest(meter[:3])
        sent_again = rt.ingestor.ingest(meter[:3], drop_repeats=True)  # an MQTT redelivery
        assert (sent_again.repeats, sent_again.stored, sent_again.duplicates) == (3, 0, 0)
        assert rt.ingestor.engine.must_save == set()
        retried = rt.ingestor.ingest(meter[1:])  # without: older is LATE, the newest a duplicate
        assert (retried.repeats, retried.stored, retried.duplicates) == (0, 2, 1)
        assert rt.store.last_times() == {("meter-1", "energy_wh_total"): T0 + 3 * Q}
    assert day_kwh(minimal_config) == {"meter-1": pytest.approx(3.0)}
