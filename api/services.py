"""What every request handler shares: the settings, the opened runtime and the lock around it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from gronkoll.runtime import Runtime
from gronkoll.settings import Settings


@dataclass(kw_only=True)
class Services:
    """The app's share of Gronkoll: one Runtime, opened lazily, and the lock that guards it."""

    settings: Settings
    runtime: Runtime
    owns_runtime: bool
    # FastAPI runs sync endpoints and dependencies in a thread pool, but the SQLite store is
    # one shared connection and Runtime opens its parts lazily without locking. Every use of
    # the runtime therefore holds this lock; reports read hourly/daily rollups, so a request
    # holds it for milliseconds, which one municipality's traffic never notices.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The last store problem logged as a warning, so a dead store is not logged every request.
    last_store_problem: str | None = None


def get_services(request: Request) -> Services:
    """FastAPI dependency: the Services of the app serving this request."""
    services: Services = request.app.state.services
    return services
