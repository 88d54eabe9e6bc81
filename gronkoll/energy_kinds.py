"""How each kind of field turns one series' readings into rows, energy and events.

The energy engine (gronkoll/energy.py) groups a batch's readings by series and calls one of
these per series with its points in time order; each updates the series' state and appends to
the batch. The rules are described in gronkoll/energy.py's docstring.
"""

from __future__ import annotations

import math

from gronkoll.energy_batch import (
    BASELINE,
    COVERED,
    GAP,
    HELD,
    LATE,
    MEASUREMENT,
    MS_PER_HOUR,
    OK,
    REJECTED,
    RESET,
    WRAP,
    Batch,
    DeviceModel,
    Series,
)
from gronkoll.fields import FIELDS, STATES

#: One series' readings in a batch: (time ms, value), sorted by time.
Points = list[tuple[int, float]]

#: What a field makes of its readings (Series.kind).
MEASURE, COUNTER, DELTA, POWER, STATE = range(5)


def kind_of(fld: str) -> int:
    """The kind of a field, from its spec; unknown fields and row fields are measurements."""
    spec = FIELDS.get(fld)
    if spec is None or spec.energy is None:
        return MEASURE
    return {"counter": COUNTER, "delta": DELTA, "gauge": POWER}.get(spec.kind, STATE)


def add_to_hour(
    out: Batch, device: str, t0: int, t1: int, wh: float, hour: int, hour_wh: float
) -> tuple[int, float]:
    """Add an interval's electricity to the running sum of its UTC hour: (hour, Wh) after it.

    A long series (an import) has many intervals per hour: a running sum costs less than the
    batch's dictionaries per interval. The caller adds the last sum with ``Batch.add_hour``
    (hour -1: none yet). An interval across an hour boundary goes to the batch at once.
    """
    h = t0 // MS_PER_HOUR
    if (t1 - 1) // MS_PER_HOUR != h:  # spans an hour boundary
        out.add_energy("electricity", device, t0, t1, wh)
        return hour, hour_wh
    if h == hour:
        return hour, hour_wh + wh
    if hour >= 0:
        out.add_hour("electricity", device, hour, hour_wh)
    return h, wh


def measurements(series: Series, points: Points, out: Batch) -> None:
    """Fields that yield no energy: stored as measurements."""
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


def power(
    series: Series, points: Points, model: DeviceModel, out: Batch, covered: float, max_gap: int
) -> None:
    """Power integrated by the trapezoid rule; readings after ``covered`` are measurements."""
    device, fld = series.device, series.field
    rows, events, sid = out.rows, out.events, series.sid
    append = rows.append
    max_w = model.max_power_w
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
            events.append((device, t, "gap", f"{fld}: {(t - last_t) / 1000:g} s without a reading"))
        else:
            wh = (last_v + v) * (t - last_t) / 7_200_000
            append((sid, t, v, last_t, wh, OK))
            intervals += 1
            hour, hour_wh = add_to_hour(out, device, last_t, t, wh, hour, hour_wh)
        last_t, last_v = t, v
    if hour >= 0:
        out.add_hour("electricity", device, hour, hour_wh)
    out.intervals += intervals
    series.last_t, series.last_v = last_t, last_v


def states(
    series: Series, points: Points, model: DeviceModel, out: Batch, covered: float, max_gap: int
) -> None:
    """States held until the next reading, times the device's power profile."""
    device = series.device
    rows, events, sid = out.rows, out.events, series.sid
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
        elif t - last_t > max_gap:
            rows.append((sid, t, v, last_t, None, GAP))
            events.append((device, t, "gap", f"state: {(t - last_t) / 1000:g} s without a reading"))
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
                hour, hour_wh = add_to_hour(out, device, last_t, t, wh, hour, hour_wh)
        last_t, last_v = t, float(v)
    if hour >= 0:
        out.add_hour("electricity", device, hour, hour_wh)
    out.intervals += intervals
    series.last_t, series.last_v = last_t, last_v


def delta(series: Series, points: Points, model: DeviceModel, out: Batch, covered: float) -> None:
    """Energy reported as an amount since the device's previous report (Tasmota Period).

    Each reading is the energy of [previous reading, this one], exact however long that
    is; the first one has no known start and counts as a baseline.
    """
    rows, events, sid = out.rows, out.events, series.sid
    device, fld = series.device, series.field
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


def counter(series: Series, points: Points, model: DeviceModel, out: Batch) -> None:
    """A cumulative counter: increases, wraps, and drops held until glitch or reset is clear."""
    device, fld = series.device, series.field
    quantity = FIELDS[fld].energy or "electricity"
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
