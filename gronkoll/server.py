"""Run the HTTP API with uvicorn."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from gronkoll.settings import Settings


def build_app(settings: Settings) -> Any:
    """The FastAPI app for these settings (the API package is loaded only when serving)."""
    api = importlib.import_module("gronkoll.api")
    return api.create_app(settings)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the API until interrupted; binds to the configured address (127.0.0.1:8000)."""
    import uvicorn

    app = build_app(settings)
    host = host or settings.api.host
    port = port or settings.api.port
    print(f"Serving the Gronkoll API on http://{host}:{port} (Ctrl+C stops)", file=sys.stderr)  # noqa: T201
    uvicorn.run(app, host=host, port=port, log_level="warning")
