"""Bearer API keys: who is calling, and whether their key's role is high enough.

A request names its key in ``Authorization: Bearer KEY``. A missing or malformed header, a
wrong key and a revoked key all answer 401, and the last two answer identically, so nobody
learns whether a key exists. The key itself never reaches a log or a response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from gronkoll.api.errors import ApiError
from gronkoll.api.services import Services, get_services
from gronkoll.statedb import ROLES, ApiKey, Role

log = logging.getLogger(__name__)

CHALLENGE = "Bearer"
MISSING_DETAIL = (
    "this route needs an API key: send the header 'Authorization: Bearer KEY' "
    "(create a key with: gronkoll apikey create --name NAME --role viewer)"
)
MALFORMED_DETAIL = "the Authorization header must be 'Bearer KEY', with the key after one space"
REJECTED_DETAIL = "the API key is not valid (wrong or revoked)"


def bearer_token(header: str | None) -> str:
    """The key from an Authorization header value; 401 when missing or not a Bearer key."""
    if header is None or not header.strip():
        raise ApiError(401, "unauthorized", MISSING_DETAIL, {"WWW-Authenticate": CHALLENGE})
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(
            401,
            "unauthorized",
            MALFORMED_DETAIL,
            {"WWW-Authenticate": f'{CHALLENGE} error="invalid_request"'},
        )
    return token


def require_role(role: Role) -> Callable[..., ApiKey]:
    """FastAPI dependency: the caller's key record, if its role is `role` or higher."""
    needed = ROLES.index(role)

    def authorised_key(
        request: Request, services: Annotated[Services, Depends(get_services)]
    ) -> ApiKey:
        token = bearer_token(request.headers.get("authorization"))
        with services.lock:
            record = services.runtime.state.verify_api_key(token)
        if record is None:
            client = request.client.host if request.client else "unknown client"
            log.warning("rejected a wrong or revoked API key from %s", client)
            raise ApiError(
                401,
                "unauthorized",
                REJECTED_DETAIL,
                {"WWW-Authenticate": f'{CHALLENGE} error="invalid_token"'},
            )
        if record.role not in ROLES or ROLES.index(record.role) < needed:
            raise ApiError(
                403,
                "forbidden",
                f"this route needs the {role} role or higher; "
                f"the key {record.name!r} has the {record.role} role",
            )
        return record

    return authorised_key
