"""The API's one error shape, ``{"error": code, "detail": text}``, and the handlers that make it.

Every failure a client can see goes through here: Gronkoll's own errors, FastAPI's request
validation, Starlette's routing errors (404, 405) and, as a last resort, anything unexpected,
which is logged with its traceback and answered with a 500 that says nothing about it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gronkoll.api.services import Services
from gronkoll.errors import InputError, StoreUnavailable

log = logging.getLogger(__name__)

# Codes of the HTTP statuses the API answers with itself; others fall back to the phrase.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
    503: "store_unavailable",
}

INTERNAL_DETAIL = "an unexpected error occurred; the server log has the details"
STORE_DETAIL = (
    "the data store cannot be used right now (locked, read-only, missing or unreachable); "
    "the server log names the file and the reason"
)
PARAMETER_PLACES = {
    "query": "query parameter",
    "header": "header",
    "path": "path parameter",
    "cookie": "cookie",
    "body": "request body field",
}


class ApiError(Exception):
    """An error the API answers with as it is: status, code, detail and extra headers."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A response in the API's one error shape."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def refuse_unknown_parameters(request: Request, known: tuple[str, ...]) -> None:
    """A misspelt query parameter would otherwise be ignored silently and change the answer."""
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise InputError(f"unknown query parameter {names} (expected some of {', '.join(known)})")


def status_code_name(status: int) -> str:
    """The error code for an HTTP status, e.g. 404 -> not_found."""
    if status in CODES:
        return CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def validation_detail(errors: Any) -> str:
    """A short text naming each bad or missing parameter, without echoing its value."""
    parts: list[str] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        place = PARAMETER_PLACES.get(str(loc[0]), "parameter") if loc else "parameter"
        name = str(loc[-1]) if len(loc) > 1 else "?"
        if error.get("type") == "missing":
            parts.append(f"missing {place} '{name}'")
        else:
            parts.append(f"{place} '{name}': {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    error = cast(ApiError, exc)  # registered for ApiError only
    return error_response(error.status, error.code, error.detail, error.headers)


async def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(400, "bad_request", str(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    error = cast(RequestValidationError, exc)  # registered for it only
    return error_response(400, "bad_request", validation_detail(error.errors()))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    error = cast(StarletteHTTPException, exc)  # registered for it only
    status, headers = error.status_code, dict(error.headers or {})
    if status == 404:
        detail = f"no route at {request.url.path} (docs/api.md lists the routes)"
    elif status == 405:
        allowed = headers.get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}" + (
            f" (allowed: {allowed})" if allowed else ""
        )
    else:
        detail = str(error.detail)
    return error_response(status, status_code_name(status), detail, headers)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    services: Services = request.app.state.services
    problem = str(exc)
    # Warn once per distinct problem; a monitor polling /health must not flood the log.
    level = logging.DEBUG if problem == services.last_store_problem else logging.WARNING
    services.last_store_problem = problem
    log.log(level, "store unavailable: %s", problem)
    return error_response(503, "store_unavailable", STORE_DETAIL)


class CatchUnexpected:
    """ASGI middleware: any exception no handler took becomes a logged, uninformative 500.

    Starlette's own last-resort handler re-raises after answering, so the server would log
    the traceback a second time; this layer answers, logs once and stops there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 - the outermost layer of a request, logged below
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await error_response(500, "internal_error", INTERNAL_DETAIL)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can answer with take the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_middleware(CatchUnexpected)
