"""The energy engine drops repeats when asked, and undoes a batch it could not store."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gronkoll.energy import Batch, DeviceModel, EnergyEngine, Flag

MIN = 60_000
T0 = 1_774_735_200_000  # 2026-03-28T22:00:00Z, on the hour

Reading = tuple[str, str, int, float]
MODELS = {
    "a": DeviceModel(max_power_w=50_000, state_w=(60.0, 35.0, 2.0, 0.5)),
    "b": DeviceModel(max_power_w=5_000, counter_modulus_wh=2.0**16),
}


def newer_than_processed(engine: EnergyEngine, readings: list[Reading]) -> list[Reading]:
    """The readings newer than their series' newest before the batch: what is not a repeat."""
    newest = {(d, f): engine.last_time(d, f) for d, f, _, _ in readings}
    return [r for r in readings if (last := newest[(r[0], r[1])]) is None or r[2] > last]


def output(batch: Batch) -> str:
    """What a batch holds, as text: a NaN reading equals itself."""
    return repr(
        (
            batch.rows,
            batch.hourly,
            batch.events,
            batch.intervals,
            batch.duplicates,
            sorted(batch.unknown),
            batch.latest,
            batch.t_min,
            batch.t_max,
        )
    )


def state(engine: EnergyEngine) -> str:
    """The engine's state (repr: NaN equals NaN); a series numbered but empty counts as none."""
    saved = {d: engine.export_state(d) for d in MODELS}
    for device in saved.values():
        device["series"] = {
            f: s for f, s in device["series"].items() if s != [None, 0.0, None, 0.0]
        }
    return repr(saved)


def test_readings_not_newer_than_their_series_are_repeats_equal_ones_within_a_batch_duplicates() -> (
    None
):
    e = EnergyEngine(MODELS)
    e.process([("a", "power_w", T0, 100.0), ("a", "power_w", T0 + 10 * MIN, 100.0)])
    b = e.process(
        [
            ("a", "power_w", T0 + 5 * MIN, 100.0),  # older than the series: a repeat
            ("a", "power_w", T0 + 10 * MIN, 100.0),  # as old as the series: a repeat
            ("a", "power_w", T0 + 20 * MIN, 200.0),
            ("a", "power_w", T0 + 20 * MIN, 200.0),  # sent twice in the batch: a duplicate
            ("a", "power_w", T0 + 15 * MIN, 100.0),  # older than one in the batch: late
        ],
        drop_repeats=True,
    )
    assert b.repeats == 2 and b.duplicates == 1
    assert [(r[1], Flag(r[5])) for r in b.rows] == [
        (T0 + 15 * MIN, Flag.OK),
        (T0 + 20 * MIN, Flag.OK),
    ]
    assert (b.t_min, b.t_max) == (T0 + 15 * MIN, T0 + 20 * MIN)


def test_a_held_counter_drop_is_the_newest_a_repeat_is_measured_against() -> None:
    e = EnergyEngine(MODELS)
    e.process([("b", "energy_wh_total", T0, 1000.0), ("b", "energy_wh_total", T0 + MIN, 5.0)])
    again = e.process([("b", "energy_wh_total", T0 + MIN, 5.0)], drop_repeats=True)
    assert (again.repeats, again.rows, again.latest) == (1, [], {})
    assert e.export_state("b")["series"]["energy_wh_total"] == [T0, 1000.0, T0 + MIN, 5.0]


def test_the_same_reading_twice_in_a_batch_is_stored_once() -> None:
    reading = ("a", "voltage_v", T0, 230.1)
    b = EnergyEngine(MODELS).process([reading, reading])
    assert (len(b.rows), b.duplicates) == (1, 1)


def test_a_rolled_back_batch_leaves_the_engine_as_before_and_can_be_sent_again() -> None:
    e = EnergyEngine(MODELS)
    e.process([("a", "power_w", T0, 100.0), ("b", "energy_wh_total", T0, 50.0)])
    e.settle()
    before = state(e)
    first = [("a", "power_w", T0 + 5 * MIN, 300.0), ("a", "energy_wh_total", T0 + 5 * MIN, 9.0)]
    second = [("a", "voltage_v", T0 + 6 * MIN, 231.0), ("b", "energy_wh_total", T0 + MIN, 1.0)]
    sent = e.process(first, drop_repeats=True), e.process(second, drop_repeats=True)
    e.rollback()  # neither batch could be stored
    assert state(e) == before
    again = e.process(first, drop_repeats=True), e.process(second, drop_repeats=True)
    assert [output(b) for b in again] == [output(b) for b in sent]


FIELD = st.sampled_from(
    ["power_w", "energy_wh_total", "energy_wh", "state", "voltage_v", "heat_wh_total"]
)
READING = st.tuples(
    st.sampled_from(["a", "b", "ghost"]),  # ghost: a device the engine does not know
    st.integers(0, 120),  # minutes after T0
    FIELD,
    st.one_of(st.floats(-10, 2e5), st.just(math.nan), st.sampled_from([0.0, 1.0, 2.0, 3.0])),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(READING, max_size=12), max_size=6))
def test_dropping_repeats_is_filtering_them_before_the_batch(
    batches: list[list[tuple[str, int, str, float]]],
) -> None:
    dropping, filtered = EnergyEngine(MODELS), EnergyEngine(MODELS)
    for raw in batches:
        readings = [(d, f, T0 + m * MIN, v) for d, m, f, v in raw]
        fresh = newer_than_processed(filtered, readings)
        b = dropping.process(readings, drop_repeats=True)
        assert output(b) == output(filtered.process(fresh))
        assert b.repeats == len(readings) - len(fresh)
        assert state(dropping) == state(filtered)
        dropping.settle()
        filtered.settle()
