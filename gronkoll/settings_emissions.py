"""Config for energy and carbon: emission factors with their sources, and the energy engine."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gronkoll.settings_base import Strict


class Factor(Strict):
    gco2e_per_kwh: float = Field(ge=0)
    source: str = Field(min_length=1)
    year: int | None = None


class HourlyFactors(Strict):
    path: str
    source: str = Field(min_length=1)
    applies_to: Literal["location_based", "market_based"] = "location_based"


LOCATION_DEFAULT = Factor(
    gco2e_per_kwh=90,
    year=2021,
    source=(
        "Nordic electricity mix with imports and exports, life-cycle, about 90 g CO2e/kWh: "
        "IVL Svenska Miljöinstitutet, SMED Rapport Nr 4 2021, for Naturvårdsverket"
    ),
)
MARKET_DEFAULT = Factor(
    gco2e_per_kwh=524.10,
    year=2023,
    source=(
        "Nordic residual mix 2023, 524.10 g CO2/kWh (direct CO2 only): Energimarknadsinspektionen "
        "(Ei), Residualmix; applies to electricity bought without guarantees of origin"
    ),
)


class Emissions(Strict):
    location_based: Factor = LOCATION_DEFAULT
    market_based: Factor = MARKET_DEFAULT
    hourly: HourlyFactors | None = None


class EnergySettings(Strict):
    max_gap_s: float = Field(default=900, gt=0)
    plausibility_margin: float = Field(default=0.1, ge=0)
