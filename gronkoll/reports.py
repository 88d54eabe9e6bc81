"""Energy reports: kWh and kg CO2e per key and local-time bucket, read from the rollups."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gronkoll.carbon import Factors
from gronkoll.errors import InputError
from gronkoll.settings import Factor
from gronkoll.stores.base import DIMENSIONS, TimeSeriesStore
from gronkoll.timeparse import (
    BUCKETS,
    MS_PER_HOUR,
    check_range,
    day_label,
    iso_local,
    local_date,
    local_midnight_ms,
)

CSV_HEADER = ("bucket", "key", "energy_kwh", "co2e_kg")
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True, slots=True)
class EnergyRow:
    """Energy of one key in one bucket, with location- and market-based CO2e."""

    bucket: str
    key: str
    energy_kwh: float
    co2e_kg: float
    co2e_market_kg: float


@dataclass(frozen=True, slots=True)
class EnergyReport:
    """A finished report: its rows, what it covers and how CO2e was computed."""

    start_ms: int
    end_ms: int
    by: str
    bucket: str
    timezone: str
    rows: list[EnergyRow]
    factors: Factors
    hourly_coverage: float | None  # share of kWh matched to an hourly factor

    @property
    def energy_kwh(self) -> float:
        """Total energy of the report."""
        return sum(r.energy_kwh for r in self.rows)

    @property
    def co2e_kg(self) -> float:
        """Total location-based CO2e."""
        return sum(r.co2e_kg for r in self.rows)

    @property
    def co2e_market_kg(self) -> float:
        """Total market-based CO2e."""
        return sum(r.co2e_market_kg for r in self.rows)


def _validate(by: str, bucket: str) -> None:
    if by not in DIMENSIONS:
        raise InputError(f"unknown grouping {by!r} (expected one of {', '.join(DIMENSIONS)})")
    if bucket not in BUCKETS:
        raise InputError(f"unknown bucket {bucket!r} (expected one of {', '.join(BUCKETS)})")


def _whole_days(start_ms: int, end_ms: int, tz: Any) -> tuple[date, date, int, int] | None:
    """The whole local days inside [start, end): first day, end day, and their ms bounds."""
    first = local_date(start_ms, tz)
    if local_midnight_ms(first, tz) < start_ms:
        first += timedelta(days=1)
    end = local_date(end_ms, tz)
    if end <= first:
        return None
    return first, end, local_midnight_ms(first, tz), local_midnight_ms(end, tz)


def energy_report(
    store: TimeSeriesStore,
    factors: Factors,
    tz: Any,
    *,
    start_ms: int,
    end_ms: int,
    by: str = "site",
    bucket: str = "day",
    names: tuple[str, str] = ("--from", "--to"),
) -> EnergyReport:
    """Sum electricity over [start, end) per key and bucket in local time.

    ``names`` are what the caller calls the two ends, for error messages.
    """
    _validate(by, bucket)
    check_range(start_ms, end_ms, names)
    # (label, key) -> [Wh, Wh matched to an hourly factor, g CO2e location-based]
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    loc = factors.location_based.gco2e_per_kwh
    hourly = (
        factors.hourly if factors.hourly and factors.hourly.applies_to == "location_based" else None
    )

    def add_hours(a: int, b: int) -> None:
        for hour_ms, key, wh in store.energy_by_hour("electricity", by, a, b):
            label = (
                iso_local(hour_ms, tz)
                if bucket == "hour"
                else day_label(local_date(hour_ms, tz), bucket)  # type: ignore[arg-type]
            )
            acc = sums[(label, key)]
            acc[0] += wh
            if hourly is not None:
                g = hourly.by_hour.get(hour_ms // MS_PER_HOUR)
                if g is not None:
                    acc[1] += wh
                    acc[2] += wh * g
                    continue
            acc[2] += wh * loc

    days = None if bucket == "hour" or hourly is not None else _whole_days(start_ms, end_ms, tz)
    if days is None:
        add_hours(start_ms, end_ms)
    else:
        first, end, first_ms, end_day_ms = days
        if start_ms < first_ms:
            add_hours(start_ms, first_ms)
        for day, key, wh in store.energy_by_day("electricity", by, first, end):
            acc = sums[(day_label(day, bucket), key)]  # type: ignore[arg-type]
            acc[0] += wh
            acc[2] += wh * loc
        if end_day_ms < end_ms:
            add_hours(end_day_ms, end_ms)

    market = factors.market_based.gco2e_per_kwh
    rows = [
        EnergyRow(
            bucket=label,
            key=key,
            energy_kwh=wh / 1000,
            co2e_kg=g / 1e6,
            co2e_market_kg=wh * market / 1e6,
        )
        for (label, key), (wh, _, g) in sorted(sums.items())
    ]
    total = sum(v[0] for v in sums.values())
    coverage = (sum(v[1] for v in sums.values()) / total if total else 0.0) if hourly else None
    return EnergyReport(
        start_ms=start_ms,
        end_ms=end_ms,
        by=by,
        bucket=bucket,
        timezone=tz.key,
        rows=rows,
        factors=factors,
        hourly_coverage=coverage,
    )


# -- rendering --------------------------------------------------------------------------
def _factor_json(f: Factor, co2e_kg: float) -> dict[str, Any]:
    return {
        "gco2e_per_kwh": f.gco2e_per_kwh,
        "year": f.year,
        "source": f.source,
        "co2e_kg": round(co2e_kg, 6),
    }


def methodology(report: EnergyReport) -> dict[str, Any]:
    """How the report's CO2e was computed: factors, sources, both Scope 2 methods."""
    f = report.factors
    hourly = None
    if f.hourly is not None:
        hourly = {
            "source": f.hourly.source,
            "file": f.hourly.path.name,
            "applies_to": f.hourly.applies_to,
            "hours": len(f.hourly.by_hour),
            "energy_share_matched": None
            if report.hourly_coverage is None
            else round(report.hourly_coverage, 6),
        }
    return {
        "co2e_kg_method": "location_based",
        "location_based": _factor_json(f.location_based, report.co2e_kg),
        "market_based": _factor_json(f.market_based, report.co2e_market_kg),
        "hourly": hourly,
        "scope2": "GHG Protocol Scope 2 dual reporting: location-based and market-based",
        "energy": "derived at ingestion from counters, power or states (see docs/energy.md)",
    }


def to_json(report: EnergyReport, tz: Any) -> dict[str, Any]:
    """The report as the JSON document the CLI and the API return."""
    return {
        "from": iso_local(report.start_ms, tz),
        "to": iso_local(report.end_ms, tz),
        "by": report.by,
        "bucket": report.bucket,
        "timezone": report.timezone,
        "rows": [
            {
                "bucket": r.bucket,
                "key": r.key,
                "energy_kwh": round(r.energy_kwh, 6),
                "co2e_kg": round(r.co2e_kg, 6),
            }
            for r in report.rows
        ],
        "totals": {"energy_kwh": round(report.energy_kwh, 6), "co2e_kg": round(report.co2e_kg, 6)},
        "methodology": methodology(report),
    }


def to_csv(report: EnergyReport) -> str:
    """The report as CSV with the header bucket,key,energy_kwh,co2e_kg."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in report.rows:
        writer.writerow((r.bucket, r.key, f"{r.energy_kwh:.6f}", f"{r.co2e_kg:.6f}"))
    return out.getvalue()


def to_table(report: EnergyReport, tz: Any) -> str:
    """The report as an aligned text table with its totals and factors."""
    head = ("bucket", report.by, "energy_kwh", "co2e_kg")
    body = [(r.bucket, r.key, f"{r.energy_kwh:,.3f}", f"{r.co2e_kg:,.3f}") for r in report.rows]
    body.append(("total", "", f"{report.energy_kwh:,.3f}", f"{report.co2e_kg:,.3f}"))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    lines = [
        f"Energy {iso_local(report.start_ms, tz)} to {iso_local(report.end_ms, tz)} "
        f"({report.timezone}), by {report.by}, per {report.bucket}",
        line(head),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in body[:-1]),
        line(tuple("-" * w for w in widths)),
        line(body[-1]),
        "",
    ]
    if not report.rows:
        lines.insert(3, "(no energy recorded in this period)")
    f = report.factors
    lines.append(
        f"co2e_kg is location-based: {f.location_based.gco2e_per_kwh:g} g CO2e/kWh, "
        f"{f.location_based.source}"
    )
    if f.hourly is not None and report.hourly_coverage is not None:
        lines.append(
            f"  matched hour by hour to {f.hourly.path.name} ({f.hourly.source}) for "
            f"{report.hourly_coverage:.0%} of the energy; the rest uses the annual factor"
        )
    lines.append(
        f"Market-based: {report.co2e_market_kg:,.3f} kg CO2e at {f.market_based.gco2e_per_kwh:g} "
        f"g CO2e/kWh, {f.market_based.source}"
    )
    return "\n".join(lines) + "\n"


def render(report: EnergyReport, fmt: str, tz: Any) -> str:
    """The report in one of the formats table, csv, json."""
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return json.dumps(to_json(report, tz), ensure_ascii=False, indent=2) + "\n"
    if fmt == "table":
        return to_table(report, tz)
    raise InputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
