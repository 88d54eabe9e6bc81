"""``/api/v1/overrides``: temporary exemptions from scheduled shutdowns, listed, added, removed.

Viewers may list them; adding and removing needs the operator role, and both are audited
with the key's name as the actor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gronkoll.api.auth import require_role
from gronkoll.api.errors import ApiError
from gronkoll.api.services import Services, get_services
from gronkoll.errors import InputError
from gronkoll.overrides import add_override, list_overrides, remove_override
from gronkoll.statedb import ApiKey
from gronkoll.timeparse import parse_report_time

router = APIRouter()


class NewOverride(BaseModel):
    """The POST body: one of device and group, the window, why and who."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    device: str | None = None
    group: str | None = None
    start: str | None = Field(default=None, alias="from")  # default: now
    end: str = Field(alias="to")
    reason: str = Field(min_length=1)
    who: str | None = None  # default: the API key's name


def _time(text: str, services: Services, key: str) -> datetime:
    try:
        ms = parse_report_time(text, services.settings.tz, option=key)
    except InputError as err:
        raise InputError(f"request body field {err}") from None
    return datetime.fromtimestamp(ms / 1000, UTC)


@router.get("/api/v1/overrides")
def get_overrides(
    services: Annotated[Services, Depends(get_services)],
    _key: Annotated[ApiKey, Depends(require_role("viewer"))],
    include_past: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """Overrides not yet ended (all=true: also past ones), by start time."""
    now = datetime.now(UTC)
    with services.lock:
        found = list_overrides(services.runtime.state, now=None if include_past else now)
    return [o.as_json() for o in found]


@router.post("/api/v1/overrides", status_code=201)
def post_override(
    body: NewOverride,
    services: Annotated[Services, Depends(get_services)],
    key: Annotated[ApiKey, Depends(require_role("operator"))],
) -> JSONResponse:
    """Add an override; 400 with the error shape for an unknown device or group."""
    now = datetime.now(UTC)
    start = _time(body.start, services, "from") if body.start else now
    end = _time(body.end, services, "to")
    with services.lock:
        added = add_override(
            services.runtime.state,
            services.settings,
            device=body.device,
            group=body.group,
            start=start,
            end=end,
            reason=body.reason,
            who=body.who or key.name,
            actor=key.name,
            now=now,
        )
    return JSONResponse(added.as_json(), status_code=201)


@router.delete("/api/v1/overrides/{override_id}")
def delete_override(
    override_id: int,
    services: Annotated[Services, Depends(get_services)],
    key: Annotated[ApiKey, Depends(require_role("operator"))],
) -> dict[str, Any]:
    """Remove an override; 404 with the error shape when there is none with this id."""
    with services.lock:
        known = {o.id for o in list_overrides(services.runtime.state)}
        if override_id not in known:
            raise ApiError(404, "not_found", f"no override with id {override_id}")
        removed = remove_override(
            services.runtime.state, override_id, actor=key.name, now=datetime.now(UTC)
        )
    return removed.as_json()
