"""The HTTP API: JSON and CSV over FastAPI, built by ``create_app(settings)``."""

from gronkoll.api.app import create_app

__all__ = ["create_app"]
