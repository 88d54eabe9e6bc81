"""Emission factors: the configured location- and market-based factors and an hourly series."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from gronkoll.errors import ConfigError, InputError
from gronkoll.settings import Factor, Settings
from gronkoll.timeparse import MS_PER_HOUR, parse_instant

HOURLY_HEADER = ("time", "gco2e_per_kwh")


@dataclass(frozen=True, slots=True)
class HourlySeries:
    """Grid intensity per UTC hour (hour index = ms // 3,600,000), in g CO2e/kWh."""

    by_hour: dict[int, float]
    source: str
    applies_to: str
    path: Path

    def factor(self, hour: int, fallback: float) -> float:
        """The factor of an hour, or the fallback when the series has no value for it."""
        return self.by_hour.get(hour, fallback)


def load_hourly(path: Path, source: str, applies_to: str) -> HourlySeries:
    """Read a CSV with the header time,gco2e_per_kwh (ISO 8601 hour starts with an offset)."""
    by_hour: dict[int, float] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HOURLY_HEADER:
                raise ConfigError(f"{path}: line 1: expected the header {','.join(HOURLY_HEADER)}")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    if len(row) != 2:
                        raise InputError("expected 2 columns")
                    ms = parse_instant(row[0])
                    value = float(row[1])
                    if not math.isfinite(value) or value < 0:
                        raise InputError(f"factor {row[1]!r} is not a number >= 0")
                    if ms % MS_PER_HOUR:
                        raise InputError(f"{row[0]!r} is not the start of an hour")
                except (InputError, ValueError) as err:
                    raise ConfigError(f"{path}: line {line}: {err}") from None
                by_hour[ms // MS_PER_HOUR] = value
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot read the hourly emission factors: {err.strerror}"
        ) from None
    return HourlySeries(by_hour=by_hour, source=source, applies_to=applies_to, path=path)


@dataclass(frozen=True, slots=True)
class Factors:
    """Everything a report needs to turn kWh into kg CO2e."""

    location_based: Factor
    market_based: Factor
    hourly: HourlySeries | None


def factors(settings: Settings) -> Factors:
    """The configured factors, with the hourly series loaded when one is set."""
    em = settings.emissions
    hourly = None
    if em.hourly is not None:
        hourly = load_hourly(
            settings.resolve(em.hourly.path), em.hourly.source, em.hourly.applies_to
        )
    return Factors(location_based=em.location_based, market_based=em.market_based, hourly=hourly)
