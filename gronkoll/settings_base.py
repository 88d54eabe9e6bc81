"""The base of every config section, ids, and the municipality with its sites and groups."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

SiteKind = Literal["school", "office", "server_room", "other"]
DeviceKind = Literal["server", "pdu", "ups", "pc", "meeting_room", "meter", "heat_meter"]
DEVICE_KINDS: tuple[str, ...] = DeviceKind.__args__  # type: ignore[attr-defined]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Municipality(Strict):
    name: str = Field(min_length=1)
    timezone: str = "Europe/Stockholm"
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    language: Literal["sv", "en"] = "sv"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (expected an IANA name such as Europe/Stockholm)"
            ) from err
        return value


class Site(Strict):
    id: Identifier
    name: str = ""
    kind: SiteKind = "other"
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class Group(Strict):
    id: Identifier
    name: str = ""
    description: str = ""
    site: str | None = None  # when set, every device of the group stands on this site
