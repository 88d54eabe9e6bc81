"""``GET /health``: open to all, so a monitor can see that the API and its stores answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

import gronkoll
from gronkoll.api.services import Services, get_services
from gronkoll.errors import StoreError, StoreUnavailable

router = APIRouter()


@router.get("/health")
def health(services: Annotated[Services, Depends(get_services)]) -> dict[str, str]:
    """Ok with the version when the time-series store and the state database open; else 503."""
    try:
        with services.lock:
            # Opening is what is checked: each part is opened on first use and kept open.
            _ = services.runtime.store
            _ = services.runtime.state
    except StoreUnavailable:
        raise
    except StoreError as err:
        # A corrupt or unreadable file cannot serve either; health reports it as unavailable.
        raise StoreUnavailable(str(err)) from err
    services.last_store_problem = None
    return {"status": "ok", "version": gronkoll.__version__}
