"""The energy engine: readings in, energy intervals out (DESIGN decision 2).

Energy is derived once, at ingestion, per device and field:

* a cumulative counter (``energy_wh_total``, ``heat_wh_total``) gives the increase between two
  readings; a declared 32/64-bit counter wraps; a drop is held until the next reading says
  whether it was a glitch (the counter comes back) or a reset (it stays low: the interval gets
  the new reading, as the counter started again from zero);
* power (``power_w``) is integrated by the trapezoid rule between readings at most
  ``max_gap`` apart; a longer gap assumes nothing and is recorded;
* a state (``state``) is held until the next reading and multiplied by the device's power
  profile, with the same maximum gap.

A device's best source wins: once it has a counter, its power and state readings are kept
as measurements only (flag ``COVERED``), so energy is never counted twice. Readings older than
the last one processed are stored as ``LATE`` and add nothing; a time already processed is a
duplicate, dropped (and over MQTT, asked with ``drop_repeats``, so is anything not newer than
what a batch found processed: a redelivery). An increase or a power reading above what the
device's rated power allows is ``REJECTED`` and recorded.

This module keeps the engine: its state, and a batch grouped by series in processing order.
What each kind of field makes of a series' readings is in ``energy_kinds``; the flags, device
models and the batch's output are in ``energy_batch`` (and importable from here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gronkoll.energy_batch import (
    MEASUREMENT,
    MS_PER_HOUR,
    OK,
    REJECTED,
    Batch,
    DeviceModel,
    Event,
    Flag,
    Hourly,
    Row,
    Series,
    split_by_hour,
)
from gronkoll.energy_kinds import (
    COUNTER,
    DELTA,
    MEASURE,
    POWER,
    Points,
    counter,
    delta,
    kind_of,
    measurements,
    power,
    states,
)
from gronkoll.fields import FIELDS

__all__ = [  # what other modules take from here
    "MS_PER_HOUR",
    "OK",
    "REJECTED",
    "Batch",
    "DeviceModel",
    "EnergyEngine",
    "Event",
    "Flag",
    "Hourly",
    "Row",
    "SeriesIds",
    "split_by_hour",
]

#: A reading: device, field, time (ms since the epoch, UTC), value.
Reading = tuple[str, str, int, float]


class SeriesIds:
    """Numbers series in memory; a store passes its own numbering instead."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}

    def __call__(self, device: str, fld: str) -> int:
        return self.ids.setdefault((device, fld), len(self.ids) + 1)


class EnergyEngine:
    """Turns readings into energy, keeping per-device state that can be saved and restored."""

    def __init__(
        self,
        models: Mapping[str, DeviceModel],
        *,
        max_gap_s: float = 900,
        series_id: Callable[[str, str], int] | None = None,
    ) -> None:
        self.models = dict(models)
        self.max_gap_ms = int(max_gap_s * 1000)
        self.series_id = series_id or SeriesIds()
        self._series: dict[str, dict[str, Series]] = {}  # device -> field -> its series
        self._index: dict[tuple[str, str], Series] = {}  # the same, by (device, field)
        # device -> time from which its counter covers its power and state readings
        self._covered_since: dict[str, int] = {}
        # device -> time from which its power readings cover its state readings
        self._power_since: dict[str, int] = {}
        # device -> time from which energy deltas cover its power and state readings
        self._delta_since: dict[str, int] = {}
        self.dirty: set[str] = set()
        #: Devices whose state changed in a way the store's newest readings cannot rebuild
        #: (a counter drop held, a first energy source marked): save them after every batch.
        self.must_save: set[str] = set()
        # What processing changed since the last settle(), so rollback() can undo it.
        self._undo: dict[Series, tuple[int | None, float, int | None, float]] = {}
        self._new_marks: list[tuple[dict[str, int], str]] = []

    # -- state ---------------------------------------------------------------------------
    def export_state(self, device: str) -> dict[str, Any]:
        """The device's integration state as JSON-able data."""
        series = {
            f: [s.last_t, s.last_v, s.held_t, s.held_v]
            for f, s in self._series.get(device, {}).items()
        }
        return {
            "series": series,
            "covered_since": self._covered_since.get(device),
            "power_since": self._power_since.get(device),
            "delta_since": self._delta_since.get(device),
        }

    def import_state(self, device: str, state: Mapping[str, Any]) -> None:
        """Restore a device's integration state saved by export_state."""
        for fld, (last_t, last_v, held_t, held_v) in state.get("series", {}).items():
            s = self._get_series(device, fld)
            s.last_t, s.last_v, s.held_t = last_t, float(last_v), held_t
            s.held_v = float(held_v)
        for name, target in (
            ("covered_since", self._covered_since),
            ("power_since", self._power_since),
            ("delta_since", self._delta_since),
        ):
            if state.get(name) is not None:
                target[device] = int(state[name])

    def forget(self, device: str) -> None:
        """Drop a device's integration state."""
        for fld in self._series.pop(device, {}):
            del self._index[(device, fld)]
        self._covered_since.pop(device, None)
        self._power_since.pop(device, None)
        self._delta_since.pop(device, None)

    def resume_series(self, device: str, fld: str, t: int, value: float) -> None:
        """Continue a series from a stored reading (its saved state was older)."""
        s = self._get_series(device, fld)
        s.last_t, s.last_v, s.held_t, s.held_v = t, value, None, 0.0

    def settle(self) -> None:
        """Keep what was processed since the last settle(): it was stored."""
        self._undo.clear()
        self._new_marks.clear()

    def rollback(self) -> None:
        """Undo what was processed since the last settle(): it could not be stored."""
        for series, (last_t, last_v, held_t, held_v) in self._undo.items():
            series.last_t, series.last_v = last_t, last_v
            series.held_t, series.held_v = held_t, held_v
        for marks, device in self._new_marks:
            marks.pop(device, None)
        self.settle()

    @property
    def series_count(self) -> int:
        """How many (device, field) series the engine keeps state for."""
        return len(self._index)

    def last_time(self, device: str, fld: str) -> int | None:
        """Time (ms) of the newest reading processed for a device's field."""
        s = self._index.get((device, fld))
        return None if s is None else s.newest()

    def _get_series(self, device: str, fld: str) -> Series:
        s = self._index.get((device, fld))
        if s is None:
            s = Series(self.series_id(device, fld), device, fld, kind_of(fld))
            self._series.setdefault(device, {})[fld] = self._index[(device, fld)] = s
        return s

    # -- processing ----------------------------------------------------------------------
    def process(self, readings: Iterable[Reading], *, drop_repeats: bool = False) -> Batch:
        """Process readings (device, field, time ms, value) in any order.

        With ``drop_repeats``, a reading not newer than the newest its series had before this
        batch is dropped and counted in ``Batch.repeats`` (over MQTT: a redelivery or a
        replay); within the batch, an equal time is a duplicate and an older one LATE.
        """
        out = Batch()
        firsts, more, out.repeats = _grouped(readings, self._index if drop_repeats else None)
        models, index, undo, dirty = self.models, self._index, self._undo, self.dirty
        rows, latest = out.rows, out.latest
        t_min = t_max = None
        # A live MQTT batch holds one reading of most series, so this loop runs about once per
        # reading. It works on the reading itself and keeps a series' work to a few local
        # operations; it makes a list of points only for a series with several readings or a
        # field that yields energy. Fewer objects per reading also means less garbage
        # collection, which costs as much as the work itself in a busy process.
        for reading in firsts:
            device, fld, t, value = reading
            key = (device, fld)
            extra = more.get(key) if more else None
            model = models.get(device)
            if model is None:
                out.unknown.append(reading)
                out.unknown.extend(extra or ())
                continue
            series = index.get(key) or self._get_series(device, fld)
            if series not in undo:
                undo[series] = (series.last_t, series.last_v, series.held_t, series.held_v)
            dirty.add(device)
            if extra is None:
                if t_min is None or t < t_min:
                    t_min = t
                if t_max is None or t > t_max:
                    t_max = t
                if series.kind == MEASURE and (series.last_t is None or t > series.last_t):
                    # the usual reading: one newer voltage, current, frequency, ...
                    rows.append((series.sid, t, value, None, None, MEASUREMENT))
                    series.last_t, series.last_v = t, value
                    latest[series.sid] = (t, value)
                    continue
                points = [(t, value)]
            else:
                points = sorted([(r[2], r[3]) for r in (reading, *extra)])
                if t_min is None or points[0][0] < t_min:
                    t_min = points[0][0]
                if t_max is None or points[-1][0] > t_max:
                    t_max = points[-1][0]
            self._integrate(series, model, points, out)
            if series.last_t is not None:
                latest[series.sid] = (series.last_t, series.last_v)
        out.t_min, out.t_max = t_min, t_max
        return out

    def _integrate(self, series: Series, model: DeviceModel, points: Points, out: Batch) -> None:
        """One series' points, in time order, through its kind's integrator."""
        device, kind = series.device, series.kind
        covered_since, delta_since = self._covered_since, self._delta_since
        if kind == MEASURE:
            measurements(series, points, out)
        elif kind == POWER:
            if device not in self._power_since:
                self._mark(self._power_since, device, points[0][0])
            covered = min(covered_since.get(device, math.inf), delta_since.get(device, math.inf))
            power(series, points, model, out, covered, self.max_gap_ms)
        elif kind == COUNTER:
            if device not in covered_since and FIELDS[series.field].energy == "electricity":
                self._mark(covered_since, device, points[0][0])
            held_t = series.held_t
            counter(series, points, model, out)
            if series.held_t != held_t:
                self.must_save.add(device)
        elif kind == DELTA:
            if device not in delta_since:
                self._mark(delta_since, device, points[0][0])
            delta(series, points, model, out, covered_since.get(device, math.inf))
        else:
            covered = min(
                covered_since.get(device, math.inf),
                delta_since.get(device, math.inf),
                self._power_since.get(device, math.inf),
            )
            states(series, points, model, out, covered, self.max_gap_ms)

    def _mark(self, marks: dict[str, int], device: str, t: int) -> None:
        """Note when a device's energy source started (the caller checked it is the first)."""
        marks[device] = t
        self._new_marks.append((marks, device))
        self.must_save.add(device)


#: Processing order of a batch's series by field: a device's counter first, so it covers the
#: device's power and state readings in the same batch; then energy deltas, then power;
#: states and everything else last.
_ORDER = {"energy_wh_total": 0, "energy_wh": 1, "power_w": 2}


def _grouped(
    readings: Iterable[Reading], repeats_of: Mapping[tuple[str, str], Series] | None
) -> tuple[list[Reading], dict[tuple[str, str], list[Reading]], int]:
    """Each series' first reading, in processing order (first come first within a rank), the
    further readings of the series that have more than one, and the number of repeats.

    With ``repeats_of`` (the engine's series), a reading not newer than its series' newest
    is a repeat: left out and counted. The series are as the batch found them, as nothing
    is processed yet.
    """
    seen: set[tuple[str, str]] = set()
    more: dict[tuple[str, str], list[Reading]] = {}
    ranked: tuple[list[Reading], ...] = ([], [], [], [])
    repeats = 0
    for reading in readings:
        key = (reading[0], reading[1])
        if repeats_of is not None and (series := repeats_of.get(key)) is not None:
            newest = series.newest()
            if newest is not None and reading[2] <= newest:
                repeats += 1
                continue
        if key not in seen:
            seen.add(key)
            ranked[_ORDER.get(reading[1], 3)].append(reading)
        else:
            more.setdefault(key, []).append(reading)
    return ranked[0] + ranked[1] + ranked[2] + ranked[3], more, repeats
