"""The shutdown report: per night, machines targeted, off, non-compliant by reason, and what
the nights off saved in kWh, SEK and kg CO2e (both Scope 2 methods), with the baseline used."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from gronkoll.carbon import Factors
from gronkoll.errors import InputError
from gronkoll.savings import Baseline, baseline, saved_kwh
from gronkoll.settings import Settings
from gronkoll.shutdown_results import REASONS, ShutdownResult, baseline_counts, load
from gronkoll.statedb import StateDB

BY = ("all", "site", "group")
FORMATS = ("table", "csv", "json")
COLUMNS = (
    "night",
    "key",
    "targeted",
    "off",
    "already_off",
    "on_observed",
    *(f"non_compliant_{r.replace('-', '_')}" for r in REASONS),
    "hours_off",
    "energy_kwh",
    "cost_sek",
    "co2e_kg",
    "co2e_market_kg",
)


@dataclass(slots=True)
class NightRow:
    """One night of one key (site, group, or all)."""

    night: str
    key: str
    targeted: int = 0
    off: int = 0
    already_off: int = 0
    on_observed: int = 0  # audit-only runs: machines found on at the planned time
    non_compliant: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    hours_off: float = 0.0
    energy_kwh: float = 0.0
    cost_sek: float | None = 0.0  # None when no price is configured
    co2e_kg: float = 0.0
    co2e_market_kg: float = 0.0

    def flat(self) -> dict[str, Any]:
        """The row as the CSV and JSON columns."""
        out = asdict(self)
        for reason, n in out.pop("non_compliant").items():
            out[f"non_compliant_{reason.replace('-', '_')}"] = n
        for name in ("hours_off", "energy_kwh", "cost_sek", "co2e_kg", "co2e_market_kg"):
            out[name] = None if out[name] is None else round(out[name], 4)
        return {c: out[c] for c in COLUMNS}


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """The rows and everything they were computed with."""

    first: date
    end: date
    by: str
    rows: list[NightRow]
    baseline: Baseline
    price_sek_per_kwh: float | None
    factors: Factors


def shutdown_report(
    state: StateDB, settings: Settings, factors: Factors, *, first: date, end: date, by: str
) -> ShutdownReport:
    """The report of the nights first <= night < end."""
    if by not in BY:
        raise InputError(f"unknown grouping {by!r} (expected one of {', '.join(BY)})")
    if end <= first:
        raise InputError(f"--to {end} must be after --from {first}")
    base = baseline(settings, *baseline_counts(state))
    price = settings.shutdown.price_sek_per_kwh
    rows: dict[tuple[date, str], NightRow] = {}
    for r in load(state, first=first, end=end):
        key = _key(r, by)
        row = rows.setdefault(
            (r.night, key),
            NightRow(r.night.isoformat(), key, cost_sek=None if price is None else 0.0),
        )
        _count(row, r, base.share, price, factors)
    return ShutdownReport(first, end, by, [rows[k] for k in sorted(rows)], base, price, factors)


def parse_night(text: str, option: str) -> date:
    """A --from/--to night: a local date YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: not a date (expected YYYY-MM-DD)") from None


def _key(r: ShutdownResult, by: str) -> str:
    if by == "site":
        return r.site
    if by == "group":
        return r.group or "ungrouped"
    return "all"


def _count(row: NightRow, r: ShutdownResult, share: float, price: float | None, f: Factors) -> None:
    row.targeted += 1
    if r.audit_only:
        row.on_observed += r.outcome == "on"
        return
    if r.outcome == "off":
        row.off += 1
    elif r.outcome == "already-off":
        row.already_off += 1
    elif r.outcome == "non-compliant" and r.reason in row.non_compliant:
        row.non_compliant[r.reason] += 1
    kwh = saved_kwh(r, share)
    row.hours_off += r.hours_off()
    row.energy_kwh += kwh
    if row.cost_sek is not None and price is not None:
        row.cost_sek += kwh * price
    row.co2e_kg += kwh * f.location_based.gco2e_per_kwh / 1000
    row.co2e_market_kg += kwh * f.market_based.gco2e_per_kwh / 1000


def assumptions(report: ShutdownReport) -> list[str]:
    """The figures the report used, with their sources (DESIGN decision 7)."""
    f = report.factors
    return [
        f"Savings = hours off x (idle W - off W) x {report.baseline.share:.2f}, "
        f"the share that would have stayed on ({report.baseline.source}).",
        "Hours off: from the verified off time until first seen on again, at most until the "
        "next weekday morning (shutdown.savings_until).",
        _price_line(report.price_sek_per_kwh),
        f"Location-based: {f.location_based.gco2e_per_kwh:g} g CO2e/kWh ({f.location_based.source}).",
        f"Market-based: {f.market_based.gco2e_per_kwh:g} g CO2e/kWh ({f.market_based.source}).",
    ]


def _price_line(price: float | None) -> str:
    if price is None:
        return (
            "Price: no price configured: set shutdown.price_sek_per_kwh (your contract's SEK/kWh)."
        )
    return f"Price: {price:g} SEK/kWh (shutdown.price_sek_per_kwh)."


def _sum(rows: list[dict[str, Any]], column: str) -> float:
    return round(float(sum(r[column] for r in rows)), 4)


def to_json(report: ShutdownReport) -> dict[str, Any]:
    """The report as a JSON object: rows, totals and assumptions."""
    rows = [r.flat() for r in report.rows]
    totals = {
        c: None if c == "cost_sek" and report.price_sek_per_kwh is None else _sum(rows, c)
        for c in COLUMNS
        if c not in ("night", "key")
    }
    return {
        "from": report.first.isoformat(),
        "to": report.end.isoformat(),
        "by": report.by,
        "rows": rows,
        "totals": totals,
        "baseline": {
            "counterfactual_on_share": report.baseline.share,
            "source": report.baseline.source,
            "observations": report.baseline.observations,
        },
        "price_sek_per_kwh": report.price_sek_per_kwh,
        "emission_factors": {
            "location_based": report.factors.location_based.model_dump(),
            "market_based": report.factors.market_based.model_dump(),
        },
        "assumptions": assumptions(report),
    }


def render(report: ShutdownReport, fmt: str) -> str:
    """The report as a table with its assumptions, CSV, or JSON."""
    if fmt == "json":
        return json.dumps(to_json(report), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.flat() for r in report.rows)
        return out.getvalue()
    if fmt != "table":
        raise InputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    header = ("night", "key", "targeted", "off", "non-compliant", "kWh", "SEK", "kg CO2e")
    lines = ["  ".join(f"{h:>13}" if i > 1 else f"{h:<12}" for i, h in enumerate(header))]
    if not report.rows:
        lines = ["No shutdown runs in that period."]
    for r in report.rows:
        reasons = ", ".join(f"{n} {k}" for k, n in r.non_compliant.items() if n) or "0"
        cells = (
            r.night,
            r.key,
            str(r.targeted),
            str(r.off),
            reasons,
            f"{r.energy_kwh:.2f}",
            "-" if r.cost_sek is None else f"{r.cost_sek:.2f}",
            f"{r.co2e_kg:.3f}",
        )
        lines.append("  ".join(f"{c:>13}" if i > 1 else f"{c:<12}" for i, c in enumerate(cells)))
    lines.append("")
    lines += assumptions(report)
    lines.append("kg CO2e is location-based; the JSON and CSV also give the market-based figure.")
    return "\n".join(lines) + "\n"
