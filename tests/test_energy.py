"""The energy engine: counters, resets, wraps, glitches, gaps, states, order and restarts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gronkoll.energy import Batch, DeviceModel, EnergyEngine, Flag, split_by_hour

MIN = 60_000
T0 = 1_774_735_200_000  # 2026-03-28T22:00:00Z, on the hour

PC = DeviceModel(max_power_w=500, state_w=(60.0, 35.0, 2.0, 0.5))
METER = DeviceModel(max_power_w=100_000)
METER32 = DeviceModel(max_power_w=100_000, counter_modulus_wh=2.0**32)


def engine(**models: DeviceModel) -> EnergyEngine:
    return EnergyEngine(models or {"d": METER}, max_gap_s=900)


def flags(batch: Batch) -> list[Flag]:
    return [Flag(r[5]) for r in batch.rows]


def kinds(batch: Batch) -> list[str]:
    return [e[2] for e in batch.events]


def test_power_is_integrated_by_the_trapezoid_rule() -> None:
    e = engine(d=METER)
    b = e.process([("d", "power_w", T0, 100.0), ("d", "power_w", T0 + 15 * MIN, 300.0)])
    assert b.energy_wh == pytest.approx(50.0)  # (100 + 300) / 2 W for a quarter of an hour
    assert flags(b) == [Flag.BASELINE, Flag.OK]


def test_a_gap_longer_than_the_maximum_assumes_nothing_and_is_recorded() -> None:
    e = engine(d=METER)
    b = e.process([("d", "power_w", T0, 100.0), ("d", "power_w", T0 + 16 * MIN, 100.0)])
    assert b.energy_wh == 0
    assert flags(b)[-1] == Flag.GAP
    assert kinds(b) == ["gap"]
    assert "960 s without a reading" in b.events[0][3]


def test_states_are_held_and_multiplied_by_the_power_profile() -> None:
    e = engine(pc=PC)
    b = e.process(
        [
            ("pc", "state", T0, 0.0),
            ("pc", "state", T0 + 15 * MIN, 3.0),
            ("pc", "state", T0 + 30 * MIN, 3.0),
        ]
    )
    assert b.energy_wh == pytest.approx(60 / 4 + 0.5 / 4)


def test_a_counter_increase_is_the_energy() -> None:
    e = engine()
    b = e.process([("d", "energy_wh_total", T0 + i * MIN, 1000.0 + 10 * i) for i in range(4)])
    assert b.energy_wh == pytest.approx(30)


def test_a_counter_reset_that_lasts_gives_the_new_reading() -> None:
    e = engine()
    values = [1000.0, 1010.0, 5.0, 12.0, 20.0]
    b = e.process([("d", "energy_wh_total", T0 + i * MIN, v) for i, v in enumerate(values)])
    # 10 before the reset, 12 counted from zero (5 then 7 more), then 8
    assert b.energy_wh == pytest.approx(10 + 12 + 8)
    assert kinds(b) == ["reset"]
    assert Flag.RESET in flags(b)


@pytest.mark.parametrize("low", [0.0, 3.0, 999.0])
def test_a_counter_that_drops_and_comes_back_is_a_glitch_without_a_spike(low: float) -> None:
    e = engine()
    values = [1000.0, low, 1010.0, 1020.0]
    b = e.process([("d", "energy_wh_total", T0 + i * MIN, v) for i, v in enumerate(values)])
    assert b.energy_wh == pytest.approx(20)
    assert kinds(b) == ["glitch"]


def test_a_glitch_decision_waits_for_the_next_batch_and_survives_a_restart() -> None:
    first = engine()
    first.process([("d", "energy_wh_total", T0, 1000.0), ("d", "energy_wh_total", T0 + MIN, 0.0)])
    saved = first.export_state("d")
    second = engine()
    second.import_state("d", saved)
    b = second.process([("d", "energy_wh_total", T0 + 2 * MIN, 1004.0)])
    assert b.energy_wh == pytest.approx(4)
    assert kinds(b) == ["glitch"]


def test_a_declared_32_bit_counter_wraps() -> None:
    e = engine(d=METER32)
    top = 2.0**32
    b = e.process(
        [("d", "energy_wh_total", T0, top - 100), ("d", "energy_wh_total", T0 + 15 * MIN, 50.0)]
    )
    assert b.energy_wh == pytest.approx(150)
    assert kinds(b) == ["wrap"]


def test_an_increase_beyond_rated_power_is_rejected_and_recorded() -> None:
    e = engine(d=DeviceModel(max_power_w=1000))
    # 1000 W for 15 minutes is at most 250 Wh; 5000 Wh is impossible.
    b = e.process(
        [
            ("d", "energy_wh_total", T0, 0.0),
            ("d", "energy_wh_total", T0 + 15 * MIN, 5000.0),
            ("d", "energy_wh_total", T0 + 30 * MIN, 5100.0),
        ]
    )
    assert b.energy_wh == pytest.approx(100)
    assert kinds(b) == ["rejected"]
    assert "more than 1000 W allows" in b.events[0][3]


def test_power_above_rated_or_negative_is_rejected() -> None:
    e = engine(d=DeviceModel(max_power_w=1000))
    b = e.process(
        [
            ("d", "power_w", T0, 100.0),
            ("d", "power_w", T0 + 5 * MIN, -5.0),
            ("d", "power_w", T0 + 10 * MIN, 90_000.0),
            ("d", "power_w", T0 + 15 * MIN, 100.0),
        ]
    )
    assert b.energy_wh == pytest.approx(25)
    assert kinds(b) == ["rejected", "rejected"]


def test_repeats_and_late_readings_add_nothing() -> None:
    e = engine()
    e.process([("d", "power_w", T0, 100.0), ("d", "power_w", T0 + 10 * MIN, 100.0)])
    b = e.process([("d", "power_w", T0 + 10 * MIN, 100.0), ("d", "power_w", T0 + 5 * MIN, 100.0)])
    assert b.energy_wh == 0
    assert b.duplicates == 1
    assert flags(b) == [Flag.LATE]


def test_a_counter_covers_power_readings_of_the_same_device() -> None:
    e = engine()
    b = e.process(
        [("d", "power_w", T0 + i * MIN, 400.0) for i in range(0, 31, 5)]
        + [("d", "energy_wh_total", T0 + i * MIN, 100.0 * i) for i in (10, 20, 30)]
    )
    # Power counts until the counter's first reading (10 min at 400 W), the counter after.
    assert b.energy_wh == pytest.approx(400 / 6 + 2000)


def test_an_unknown_device_is_returned_not_stored() -> None:
    b = engine().process([("ghost", "power_w", T0, 1.0)])
    assert b.rows == [] and len(b.unknown) == 1


def test_split_by_hour_keeps_the_total() -> None:
    parts = split_by_hour(T0 + 30 * MIN, T0 + 150 * MIN, 120.0)
    assert [round(p, 9) for _, p in parts] == [30.0, 60.0, 30.0]


# -- properties --------------------------------------------------------------------------
FIELD = st.sampled_from(["power_w", "energy_wh_total", "energy_wh", "state"])
READING = st.tuples(
    st.integers(0, 300),  # minutes after T0
    FIELD,
    st.one_of(st.floats(-10, 2e5), st.just(math.nan), st.sampled_from([0.0, 1.0, 2.0, 3.0])),
)


def run(readings: list[tuple[str, str, int, float]], splits: list[int], restart: bool) -> float:
    models = {"a": DeviceModel(max_power_w=50_000, state_w=(60.0, 35.0, 2.0, 0.5))}
    eng = EnergyEngine(models)
    total = 0.0
    bounds = [0, *sorted(splits), len(readings)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        total += eng.process(readings[lo:hi]).energy_wh
        if restart:
            saved = eng.export_state("a")
            eng = EnergyEngine(models)
            eng.import_state("a", saved)
    return total


@settings(max_examples=200, deadline=None)
@given(st.lists(READING, max_size=40), st.lists(st.integers(0, 40), max_size=3), st.booleans())
def test_energy_is_never_negative(
    raw: list[tuple[int, str, float]], splits: list[int], restart: bool
) -> None:
    readings = [("a", f, T0 + m * MIN, v) for m, f, v in raw]
    splits = [min(s, len(readings)) for s in splits]
    eng = EnergyEngine({"a": DeviceModel(max_power_w=50_000, state_w=(60.0, 35.0, 2.0, 0.5))})
    b = eng.process(readings)
    assert all(r[4] is None or r[4] >= 0 for r in b.rows)
    assert all(wh >= 0 for hours in b.hourly.values() for wh in hours.values())
    assert run(readings, splits, restart) >= 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 20), st.floats(0, 5000)), min_size=1, max_size=40),
    st.integers(0, 40),
    st.sampled_from(["power_w", "energy_wh_total"]),
    st.booleans(),
)
def test_splitting_a_series_anywhere_gives_the_same_total(
    steps: list[tuple[int, float]], cut: int, fld: str, restart: bool
) -> None:
    readings, t, value = [], T0, 0.0
    for minutes, v in steps:
        t += minutes * MIN
        value = value + v if fld == "energy_wh_total" else v
        readings.append(("a", fld, t, value))
    cut = min(cut, len(readings))
    whole = run(readings, [], False)
    assert run(readings, [cut], restart) == pytest.approx(whole, rel=1e-9, abs=1e-9)


@st.composite
def counter_with_resets(draw: st.DrawFn) -> tuple[list[float], float]:
    """Counter values with lasting resets, and the sum of the increments they encode."""
    n = draw(st.integers(2, 40))
    incs = draw(st.lists(st.floats(0, 1000), min_size=n, max_size=n))
    resets = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    values = [draw(st.floats(0, 1e6))]
    expected = 0.0
    just_reset = False
    for i in range(1, n):
        prev = values[-1]
        # A reset restarts from zero: the new value is its own increment. It must be a drop
        # that lasts: the next reading counts on from the new value and stays below the old
        # one (so never on the last step, nor right after another reset).
        lasting = i < n - 1 and incs[i] + incs[i + 1] < prev
        if resets[i] and lasting and incs[i] < prev and not just_reset:
            values.append(incs[i])
            just_reset = True
        else:
            values.append(prev + incs[i])
            just_reset = False
        expected += incs[i]
    return values, expected


@settings(max_examples=300, deadline=None)
@given(counter_with_resets(), st.lists(st.integers(0, 40), max_size=3))
def test_a_counter_with_resets_sums_to_the_sum_of_its_increments(
    series: tuple[list[float], float], splits: list[int]
) -> None:
    values, expected = series
    readings = [("a", "energy_wh_total", T0 + i * 15 * MIN, v) for i, v in enumerate(values)]
    splits = [min(s, len(readings)) for s in splits]
    assert run(readings, splits, restart=True) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(READING, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_order_and_repeats_within_a_batch_do_not_change_energy(
    raw: list[tuple[int, str, float]], rnd: object
) -> None:
    readings = [("a", f, T0 + m * MIN, v) for m, f, v in raw]
    # One value per (field, time): a repeat is the same reading sent twice.
    unique = list({(r[1], r[2]): r for r in readings}.values())
    shuffled = unique + unique[: len(unique) // 2]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert math.isclose(
        run(shuffled, [], False), run(sorted(unique, key=lambda r: r[2]), [], False), abs_tol=1e-9
    )


def test_energy_deltas_count_each_report_and_cover_power() -> None:
    e = engine()
    b = e.process(
        [("d", "energy_wh", T0 + i * 5 * MIN, 2.0) for i in range(4)]
        + [("d", "power_w", T0 + i * 5 * MIN, 1000.0) for i in range(4)]
    )
    # the first amount has no known start (baseline); three more of 2 Wh; power is covered
    assert b.energy_wh == pytest.approx(6)
    e.process([("d", "energy_wh", T0 + 20 * MIN, 2.0)])
    late = e.process([("d", "energy_wh", T0 + 30 * MIN, 90_000.0)])
    assert late.energy_wh == 0 and kinds(late) == ["rejected"]
