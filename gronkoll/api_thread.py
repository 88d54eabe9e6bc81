"""The HTTP API served from a thread, for `gronkoll run` (collector and scheduler beside it)."""

from __future__ import annotations

import threading
import time

from gronkoll.errors import GronkollError
from gronkoll.server import build_app
from gronkoll.settings import Settings

START_TIMEOUT_S = 20.0


class ApiThread:
    """uvicorn in a background thread; start() returns once it listens, stop() ends it."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        self.address = f"{settings.api.host}:{settings.api.port}"
        config = uvicorn.Config(
            build_app(settings),
            host=settings.api.host,
            port=settings.api.port,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    def start(self) -> None:
        """Serve; GronkollError when it cannot listen (the port is taken, ...)."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise GronkollError(f"the API could not start on {self.address} (see the log)")
            self._thread.join(0.05)

    def stop(self) -> None:
        """Ask uvicorn to finish its requests and stop; wait for it."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join()
