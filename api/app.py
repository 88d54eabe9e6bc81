"""The app factory: one FastAPI app per call, holding the runtime it reads from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

import gronkoll
from gronkoll.api import energy, health, overrides, shutdowns
from gronkoll.api.errors import install_error_handlers
from gronkoll.api.services import Services
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings


def _lifespan(services: Services) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """On shutdown, close the runtime if the app opened it (a caller's runtime is theirs)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if services.owns_runtime:
                with services.lock:
                    services.runtime.close()

    return lifespan


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The Gronkoll API for these settings; opens nothing until the first request needs it."""
    services = Services(
        settings=settings,
        runtime=runtime if runtime is not None else Runtime(settings),
        owns_runtime=runtime is None,
    )
    # The interactive docs and the OpenAPI schema are off: everything but /health needs a
    # key (DESIGN decision 10), and docs/api.md is the reference.
    app = FastAPI(
        title="Gronkoll API",
        version=gronkoll.__version__,
        lifespan=_lifespan(services),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(energy.router)
    app.include_router(shutdowns.router)
    app.include_router(overrides.router)
    return app
