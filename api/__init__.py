"""The HTTP API (FastAPI), built by an app factory."""
