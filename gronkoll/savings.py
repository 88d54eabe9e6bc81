"""What nightly shutdowns saved: hours off x (idle W - off W) x the counterfactual share.

A machine that went off saves, for the hours it stayed off, the difference between its idle
and off power, but only for the share of machines that would have stayed on without the
policy (DESIGN, methodology anchors): the configured ``shutdown.counterfactual_on_share``,
or, when audit-only runs observed the fleet before the policy was enforced, the share of
machines those runs found on (at least `MIN_BASELINE` observations). Hours off run from the
verified off time until the machine is first seen on again (a state reading other than
``off``), capped at the next weekday morning at ``shutdown.savings_until`` local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gronkoll.fields import STATE_CODES
from gronkoll.settings import Settings
from gronkoll.shutdown_results import ShutdownResult, load, mark_seen_on

if TYPE_CHECKING:
    from gronkoll.statedb import StateDB
    from gronkoll.stores.base import TimeSeriesStore

#: Audit-only observations needed before the measured share replaces the configured one.
MIN_BASELINE = 10
OFF_CODE = float(STATE_CODES["off"])


def morning_cap(off_at: datetime, settings: Settings) -> datetime:
    """The next weekday (Mon-Fri) after off_at at shutdown.savings_until, local time, in UTC.

    A Friday-evening shutdown counts until Monday morning; public holidays, breaks and study
    days are not skipped, so savings over a long weekend are undercounted rather than invented.
    """
    tz = settings.tz
    until = settings.shutdown.savings_until
    local = off_at.astimezone(tz)
    day = local.date()
    while True:
        candidate = datetime.combine(day, until, tzinfo=tz)
        if candidate > local and candidate.weekday() < 5:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


def close_intervals(
    state: StateDB, store: TimeSeriesStore, settings: Settings, *, now: datetime
) -> int:
    """Set when machines that went off were first seen on again; how many were closed."""
    open_results = [
        r for r in load(state, open_only=True) if r.off_at is not None and r.until_at is not None
    ]
    if not open_results:
        return 0
    seen: dict[tuple[str, str], datetime] = {}
    readings = getattr(store, "readings", None)  # the embedded store can read a range
    latest = store.latest("state") if readings is None else {}
    for r in open_results:
        if r.off_at is None or r.until_at is None:
            continue
        start_ms = round(r.off_at.timestamp() * 1000)
        end_ms = round(min(r.until_at, now).timestamp() * 1000)
        first_on: int | None = None
        if readings is not None:
            for _d, fld, t, value, *_rest in readings(start_ms, end_ms, r.device):
                if fld == "state" and value != OFF_CODE and t > start_ms:
                    first_on = t
                    break
        elif r.device in latest:
            t, value = latest[r.device]
            if start_ms < t < end_ms and value != OFF_CODE:
                first_on = t
        if first_on is not None:
            seen[(r.run_id, r.device)] = datetime.fromtimestamp(first_on / 1000, UTC)
    mark_seen_on(state, seen)
    return len(seen)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The share of machines that would have stayed on, and where it comes from."""

    share: float
    source: str
    observations: int


def baseline(settings: Settings, on: int, observed: int) -> Baseline:
    """The measured share when audit-only runs observed enough machines, else the configured.

    on, observed: machines found on, and found on or off, by audit-only runs before the
    first enforced run (gronkoll.shutdown_results.baseline_counts).
    """
    if observed >= MIN_BASELINE:
        return Baseline(
            on / observed,
            f"measured: {on} of {observed} machines were on at the planned time in audit-only "
            "runs before the policy was enforced",
            observed,
        )
    return Baseline(
        settings.shutdown.counterfactual_on_share,
        "configured shutdown.counterfactual_on_share (default 0.56: LBNL-46930, Webber et al. "
        "2001, 44 % of office computers found switched off at night)",
        observed,
    )


def saved_kwh(result: ShutdownResult, share: float) -> float:
    """The energy one machine's night off saved, in kWh."""
    if result.idle_w is None:
        return 0.0
    watts = max(0.0, result.idle_w - (result.off_w or 0.0))
    return result.hours_off() * watts / 1000 * share
