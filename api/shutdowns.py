"""``GET /api/v1/shutdowns``: the report of ``gronkoll report shutdowns``, as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from gronkoll.api.auth import require_role
from gronkoll.api.energy import CSV_MEDIA_TYPE
from gronkoll.api.errors import refuse_unknown_parameters
from gronkoll.api.services import Services, get_services
from gronkoll.errors import InputError
from gronkoll.savings import close_intervals
from gronkoll.shutdown_report import parse_night, render, shutdown_report, to_json
from gronkoll.statedb import ApiKey

router = APIRouter()

PARAMETERS = ("from", "to", "by", "format")


@router.get("/api/v1/shutdowns")
def shutdowns(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    _key: Annotated[ApiKey, Depends(require_role("viewer"))],
    start: Annotated[str, Query(alias="from")],
    end: Annotated[str, Query(alias="to")],
    by: str = "all",
    fmt: Annotated[str, Query(alias="format")] = "json",
) -> Response:
    """Per night: computers targeted, off, non-compliant by reason, kWh, SEK and kg CO2e."""
    refuse_unknown_parameters(request, PARAMETERS)
    if fmt not in ("json", "csv"):
        raise InputError(f"unknown format {fmt!r} (expected json or csv)")
    first, last = parse_night(start, "from"), parse_night(end, "to")
    with services.lock:
        runtime = services.runtime
        close_intervals(runtime.state, runtime.store, services.settings, now=datetime.now(UTC))
        report = shutdown_report(
            runtime.state, services.settings, runtime.factors, first=first, end=last, by=by
        )
    if fmt == "csv":
        return Response(render(report, "csv"), media_type=CSV_MEDIA_TYPE)
    return JSONResponse(to_json(report))
