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
the last one processed are stored as ``LATE`` and add nothing; repeats are dropped. An increase
or a power reading above what the device's rated power allows is ``REJECTED`` and recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from gronkoll.fields import FIELDS, STATES

MS_PER_HOUR = 3_600_000


class Flag(IntEnum):
    """What the engine made of a reading; stored with it."""

    OK = 0  # closes an interval whose energy is counted
    BASELINE = 1  # first reading of a series: nothing before it to measure against
    GAP = 2  # too long since the previous reading: nothing assumed
    LATE = 3  # older than a reading already processed: stored, adds nothing
    RESET = 4  # counter started again from zero: the interval gets the new reading
    WRAP = 5  # counter passed its declared width and wrapped
    HELD = 6  # counter dropped: held until the next reading tells glitch from reset
    REJECTED = 7  # implausible or unusable value: recorded, never summed
    COVERED = 8  # a better energy source (a counter) covers this device: measurement only
    MEASUREMENT = 9  # a field that yields no energy (voltage, load, ...)


# Plain ints for the hot loops (an IntEnum member lookup costs more than a local int).
OK, BASELINE, GAP, LATE, RESET, WRAP, HELD, REJECTED, COVERED, MEASUREMENT = range(10)

#: A stored reading: series id, time (ms since the epoch, UTC), value, interval start (ms) or
#: None, energy of the interval ending here in Wh or None, flag.
Row = tuple[int, int, float, int | None, float | None, int]
#: Something worth recording about a device: device, time ms, kind, detail.
Event = tuple[str, int, str, str]
#: Energy per (quantity, device), per UTC hour index (ms // 3,600,000).
Hourly = dict[tuple[str, str], dict[int, float]]


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """What the engine needs to know about one device."""

    max_power_w: float
    counter_modulus_wh: float | None = None
    state_w: tuple[float | None, ...] = (None, None, None, None)


class Series:
    """Integration state of one (device, field)."""

    __slots__ = ("sid", "last_t", "last_v", "held_t", "held_v")

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.last_t: int | None = None
        self.last_v: float = 0.0
        self.held_t: int | None = None
        self.held_v: float = 0.0

    def newest(self) -> int | None:
        """Time of the newest reading processed, held or not."""
        return self.held_t if self.held_t is not None else self.last_t


@dataclass(slots=True)
class Batch:
    """The engine's output for one batch of readings."""

    rows: list[Row] = field(default_factory=list)
    hourly: Hourly = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    intervals: int = 0
    duplicates: int = 0
    unknown: list[tuple[str, str, int, float]] = field(default_factory=list)
    #: newest (time, value) per series id, for "latest reading" lookups
    latest: dict[int, tuple[int, float]] = field(default_factory=dict)
    t_min: int | None = None
    t_max: int | None = None

    @property
    def energy_wh(self) -> float:
        """Total energy of the batch, all quantities."""
        return math.fsum(wh for hours in self.hourly.values() for wh in hours.values())

    def add_hour(self, quantity: str, device: str, hour: int, wh: float) -> None:
        """Add energy to one UTC hour (hour index = ms // 3,600,000)."""
        hours = self.hourly.get((quantity, device))
        if hours is None:
            self.hourly[(quantity, device)] = {hour: wh}
        else:
            hours[hour] = hours.get(hour, 0.0) + wh

    def add_energy(self, quantity: str, device: str, t0: int, t1: int, wh: float) -> None:
        """Spread an interval's energy over the UTC hours it spans, in proportion to time."""
        h0 = t0 // MS_PER_HOUR
        if h0 == (t1 - 1) // MS_PER_HOUR:  # within one hour: the usual case
            self.add_hour(quantity, device, h0, wh)
            return
        for hour, part in split_by_hour(t0, t1, wh):
            self.add_hour(quantity, device, hour, part)


def split_by_hour(t0: int, t1: int, wh: float) -> list[tuple[int, float]]:
    """An interval's energy spread over the UTC hours it spans, in proportion to time."""
    h0, h1 = t0 // MS_PER_HOUR, (t1 - 1) // MS_PER_HOUR
    if h0 >= h1:
        return [(h0, wh)]
    span = t1 - t0
    return [
        (h, wh * (min(t1, (h + 1) * MS_PER_HOUR) - max(t0, h * MS_PER_HOUR)) / span)
        for h in range(h0, h1 + 1)
    ]


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
        self._series: dict[str, dict[str, Series]] = {}
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
        self._series.pop(device, None)
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
            series.last_t, series.last_v, series.held_t, series.held_v = (
                last_t,
                last_v,
                held_t,
                held_v,
            )
        for marks, device in self._new_marks:
            marks.pop(device, None)
        self.settle()

    def last_time(self, device: str, fld: str) -> int | None:
        """Time (ms) of the newest reading processed for a device's field."""
        s = self._series.get(device, {}).get(fld)
        return None if s is None else s.newest()

    def _get_series(self, device: str, fld: str) -> Series:
        per_device = self._series.setdefault(device, {})
        s = per_device.get(fld)
        if s is None:
            s = per_device[fld] = Series(self.series_id(device, fld))
        return s

    # -- processing ----------------------------------------------------------------------
    def process(self, readings: Iterable[tuple[str, str, int, float]]) -> Batch:
        """Process readings (device, field, time ms, value) in any order."""
        grouped: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for device, fld, t, value in readings:
            key = (device, fld)
            points = grouped.get(key)
            if points is None:
                grouped[key] = [(t, value)]
            else:
                points.append((t, value))
        out = Batch()
        # Counters first, so a device's counter covers its power and state in the same batch.
        order = {"energy_wh_total": 0, "energy_wh": 1, "power_w": 2, "state": 3}
        for (device, fld), points in sorted(grouped.items(), key=lambda kv: order.get(kv[0][1], 3)):
            model = self.models.get(device)
            if model is None:
                out.unknown.extend((device, fld, t, v) for t, v in points)
                continue
            points.sort()
            self.dirty.add(device)
            self._process_series(device, fld, model, points, out)
        return out

    def _process_series(
        self, device: str, fld: str, model: DeviceModel, points: list[tuple[int, float]], out: Batch
    ) -> None:
        spec = FIELDS.get(fld)
        series = self._get_series(device, fld)
        if series not in self._undo:
            self._undo[series] = (series.last_t, series.last_v, series.held_t, series.held_v)
        first, last = points[0][0], points[-1][0]
        if out.t_min is None or first < out.t_min:
            out.t_min = first
        if out.t_max is None or last > out.t_max:
            out.t_max = last
        if spec is None or spec.energy is None:
            self._measurements(series, points, out)
        elif spec.kind == "counter":
            if spec.energy == "electricity":
                self._mark(self._covered_since, device, first)
            held_t = series.held_t
            self._counter(device, fld, spec.energy, model, series, points, out)
            if series.held_t != held_t:
                self.must_save.add(device)
        elif spec.kind == "delta":
            self._mark(self._delta_since, device, first)
            self._delta(device, fld, model, series, points, out)
        elif spec.kind == "gauge":
            self._mark(self._power_since, device, first)
            self._power(device, fld, model, series, points, out)
        else:
            self._states(device, model, series, points, out)
        if series.last_t is not None:
            out.latest[series.sid] = (series.last_t, series.last_v)

    def _mark(self, marks: dict[str, int], device: str, t: int) -> None:
        """Note when a device's energy source started, once."""
        if device not in marks:
            marks[device] = t
            self._new_marks.append((marks, device))
            self.must_save.add(device)

    @staticmethod
    def _measurements(series: Series, points: list[tuple[int, float]], out: Batch) -> None:
        rows, sid = out.rows, series.sid
        last_t = series.last_t
        for t, v in points:
            if last_t is not None and t <= last_t:
                if t == last_t:
                    out.duplicates += 1
                else:
                    rows.append((sid, t, v, None, None, LATE))
                continue
            rows.append((sid, t, v, None, None, MEASUREMENT))
            last_t = t
            series.last_v = v
        series.last_t = last_t

    def _power(
        self,
        device: str,
        fld: str,
        model: DeviceModel,
        series: Series,
        points: list[tuple[int, float]],
        out: Batch,
    ) -> None:
        rows, events, sid = out.rows, out.events, series.sid
        append = rows.append
        max_w, max_gap = model.max_power_w, self.max_gap_ms
        covered = min(
            self._covered_since.get(device, math.inf), self._delta_since.get(device, math.inf)
        )
        last_t, last_v = series.last_t, series.last_v
        hour, hour_wh, intervals = -1, 0.0, 0
        for t, v in points:
            if last_t is not None and t <= last_t:
                if t == last_t:
                    out.duplicates += 1
                else:
                    append((sid, t, v, None, None, LATE))
                continue
            if not 0.0 <= v <= max_w:  # also false for NaN
                append((sid, t, v, None, None, REJECTED))
                events.append((device, t, "rejected", f"{fld}={v} outside 0..{max_w:g} W"))
                continue
            if t > covered:
                append((sid, t, v, None, None, COVERED))
            elif last_t is None:
                append((sid, t, v, None, None, BASELINE))
            elif t - last_t > max_gap:
                append((sid, t, v, last_t, None, GAP))
                events.append(
                    (device, t, "gap", f"{fld}: {(t - last_t) / 1000:g} s without a reading")
                )
            else:
                wh = (last_v + v) * (t - last_t) / 7_200_000
                append((sid, t, v, last_t, wh, OK))
                intervals += 1
                h = last_t // MS_PER_HOUR
                if (t - 1) // MS_PER_HOUR != h:  # spans an hour boundary
                    out.add_energy("electricity", device, last_t, t, wh)
                elif h == hour:
                    hour_wh += wh
                else:
                    if hour >= 0:
                        out.add_hour("electricity", device, hour, hour_wh)
                    hour, hour_wh = h, wh
            last_t, last_v = t, v
        if hour >= 0:
            out.add_hour("electricity", device, hour, hour_wh)
        out.intervals += intervals
        series.last_t, series.last_v = last_t, last_v

    def _states(
        self,
        device: str,
        model: DeviceModel,
        series: Series,
        points: list[tuple[int, float]],
        out: Batch,
    ) -> None:
        rows, events, sid = out.rows, out.events, series.sid
        covered = min(
            self._covered_since.get(device, math.inf),
            self._power_since.get(device, math.inf),
            self._delta_since.get(device, math.inf),
        )
        last_t, last_v = series.last_t, series.last_v
        hour, hour_wh, intervals = -1, 0.0, 0
        for t, v in points:
            if last_t is not None and t <= last_t:
                if t == last_t:
                    out.duplicates += 1
                else:
                    rows.append((sid, t, v, None, None, LATE))
                continue
            if v not in (0, 1, 2, 3):
                rows.append((sid, t, v, None, None, REJECTED))
                events.append((device, t, "rejected", f"state code {v} is not one of 0..3"))
                continue
            if t > covered:
                rows.append((sid, t, v, None, None, COVERED))
            elif last_t is None:
                rows.append((sid, t, v, None, None, BASELINE))
            elif t - last_t > self.max_gap_ms:
                rows.append((sid, t, v, last_t, None, GAP))
                events.append(
                    (device, t, "gap", f"state: {(t - last_t) / 1000:g} s without a reading")
                )
            else:
                watts = model.state_w[int(last_v)]
                if watts is None:
                    rows.append((sid, t, v, last_t, None, REJECTED))
                    events.append(
                        (
                            device,
                            t,
                            "rejected",
                            f"no power profile value for state {STATES[int(last_v)]}",
                        )
                    )
                else:
                    wh = watts * (t - last_t) / MS_PER_HOUR
                    rows.append((sid, t, v, last_t, wh, OK))
                    intervals += 1
                    h = last_t // MS_PER_HOUR
                    if (t - 1) // MS_PER_HOUR != h:  # spans an hour boundary
                        out.add_energy("electricity", device, last_t, t, wh)
                    elif h == hour:
                        hour_wh += wh
                    else:
                        if hour >= 0:
                            out.add_hour("electricity", device, hour, hour_wh)
                        hour, hour_wh = h, wh
            last_t, last_v = t, float(v)
        if hour >= 0:
            out.add_hour("electricity", device, hour, hour_wh)
        out.intervals += intervals
        series.last_t, series.last_v = last_t, last_v

    def _delta(
        self,
        device: str,
        fld: str,
        model: DeviceModel,
        series: Series,
        points: list[tuple[int, float]],
        out: Batch,
    ) -> None:
        """Energy reported as an amount since the device's previous report (Tasmota Period).

        Each reading is the energy of [previous reading, this one], exact however long that
        is; the first one has no known start and counts as a baseline.
        """
        rows, events, sid = out.rows, out.events, series.sid
        covered = self._covered_since.get(device, math.inf)
        last_t = series.last_t
        for t, v in points:
            if last_t is not None and t <= last_t:
                if t == last_t:
                    out.duplicates += 1
                else:
                    rows.append((sid, t, v, None, None, LATE))
                continue
            if not 0.0 <= v < math.inf:
                rows.append((sid, t, v, None, None, REJECTED))
                events.append((device, t, "rejected", f"{fld}={v} is not an amount of energy"))
                continue
            if t > covered:
                rows.append((sid, t, v, None, None, COVERED))
            elif last_t is None:
                rows.append((sid, t, v, None, None, BASELINE))
            elif v > model.max_power_w * (t - last_t) / MS_PER_HOUR:
                rows.append((sid, t, v, last_t, None, REJECTED))
                events.append(
                    (
                        device,
                        t,
                        "rejected",
                        f"{fld}={v:g} Wh in {(t - last_t) / 1000:g} s, more than "
                        f"{model.max_power_w:g} W allows; not counted",
                    )
                )
            else:
                rows.append((sid, t, v, last_t, v, OK))
                out.intervals += 1
                out.add_energy("electricity", device, last_t, t, v)
            last_t = t
            series.last_v = v
        series.last_t = last_t

    def _counter(
        self,
        device: str,
        fld: str,
        quantity: str,
        model: DeviceModel,
        series: Series,
        points: list[tuple[int, float]],
        out: Batch,
    ) -> None:
        rows, events, sid = out.rows, out.events, series.sid
        max_w, modulus = model.max_power_w, model.counter_modulus_wh
        last_t, last_v, held_t, held_v = series.last_t, series.last_v, series.held_t, series.held_v
        for t, v in points:
            newest = held_t if held_t is not None else last_t
            if newest is not None and t <= newest:
                if t == newest:
                    out.duplicates += 1
                else:
                    rows.append((sid, t, v, None, None, LATE))
                continue
            if not 0.0 <= v < math.inf:
                rows.append((sid, t, v, None, None, REJECTED))
                events.append((device, t, "rejected", f"{fld}={v} is not a counter value"))
                continue
            if last_t is None:
                rows.append((sid, t, v, None, None, BASELINE))
                last_t, last_v = t, v
                continue
            flag = OK
            if held_t is not None:
                if v >= last_v:  # the drop came back: it was a glitch
                    events.append(
                        (device, held_t, "glitch", f"{fld} dropped to {held_v:g} and came back")
                    )
                    wh = v - last_v
                elif v >= held_v:  # the drop lasted: a reset at held_t
                    events.append(
                        (device, held_t, "reset", f"{fld} reset from {last_v:g} to {held_v:g}")
                    )
                    wh, flag = v, RESET
                else:  # lower again: the held value was a glitch; hold this one instead
                    events.append(
                        (device, held_t, "glitch", f"{fld} dropped to {held_v:g}, then lower")
                    )
                    rows.append((sid, t, v, None, None, HELD))
                    held_t, held_v = t, v
                    continue
                held_t, held_v = None, 0.0
            elif v >= last_v:
                wh = v - last_v
            else:
                wrapped = v + modulus - last_v if modulus else math.inf
                if wrapped <= max_w * (t - last_t) / MS_PER_HOUR:
                    wh, flag = wrapped, WRAP
                    events.append((device, t, "wrap", f"{fld} wrapped at {modulus:g} Wh"))
                else:
                    rows.append((sid, t, v, None, None, HELD))
                    held_t, held_v = t, v
                    continue
            if wh > max_w * (t - last_t) / MS_PER_HOUR:
                rows.append((sid, t, v, last_t, None, REJECTED))
                events.append(
                    (
                        device,
                        t,
                        "rejected",
                        f"{fld} rose {wh:g} Wh in {(t - last_t) / 1000:g} s, more than "
                        f"{max_w:g} W allows; not counted",
                    )
                )
            else:
                rows.append((sid, t, v, last_t, wh, flag))
                out.intervals += 1
                out.add_energy(quantity, device, last_t, t, wh)
            last_t, last_v = t, v
        series.last_t, series.last_v, series.held_t, series.held_v = last_t, last_v, held_t, held_v
