"""``GET /api/v1/energy``: the energy report of ``gronkoll report energy``, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from gronkoll.api.auth import require_role
from gronkoll.api.errors import refuse_unknown_parameters
from gronkoll.api.services import Services, get_services
from gronkoll.errors import InputError
from gronkoll.reports import energy_report, to_csv, to_json
from gronkoll.statedb import ApiKey
from gronkoll.timeparse import parse_report_time

router = APIRouter()

FORMATS = ("json", "csv")
PARAMETERS = ("from", "to", "by", "bucket", "format")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _quality(params: str) -> float:
    """The q value of one Accept entry's parameters; 1 when absent, 0 when unreadable."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prefers_csv(accept: str | None) -> bool:
    """True when an Accept header ranks text/csv above application/json (JSON wins ties)."""
    csv_q = json_q = 0.0
    for entry in (accept or "").split(","):
        media, _, params = entry.partition(";")
        media = media.strip().lower()
        if media == "text/csv":
            csv_q = max(csv_q, _quality(params))
        elif media == "application/json":
            json_q = max(json_q, _quality(params))
    return csv_q > json_q


def _response_format(fmt: str | None, accept: str | None) -> str:
    """json or csv: the format parameter when given, else what the Accept header prefers."""
    if fmt is None:
        return "csv" if prefers_csv(accept) else "json"
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return fmt


@router.get("/api/v1/energy")
def energy(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    _key: Annotated[ApiKey, Depends(require_role("viewer"))],
    start: Annotated[str, Query(alias="from")],
    end: Annotated[str, Query(alias="to")],
    by: str = "site",
    bucket: str = "day",
    fmt: Annotated[str | None, Query(alias="format")] = None,
) -> Response:
    """kWh and kg CO2e per site, group, kind or device and local-time bucket in [from, to)."""
    refuse_unknown_parameters(request, PARAMETERS)
    media = _response_format(fmt, request.headers.get("accept"))
    tz = services.settings.tz
    start_ms = parse_report_time(start, tz, option="from")
    end_ms = parse_report_time(end, tz, option="to")
    with services.lock:
        runtime = services.runtime
        report = energy_report(
            runtime.store,
            runtime.factors,
            tz,
            start_ms=start_ms,
            end_ms=end_ms,
            by=by,
            bucket=bucket,
            names=("from", "to"),
        )
    headers = {"Vary": "Accept"}
    if media == "csv":
        return Response(to_csv(report), media_type=CSV_MEDIA_TYPE, headers=headers)
    return JSONResponse(to_json(report, tz), headers=headers)
