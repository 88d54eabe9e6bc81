"""Where the collector gets its time: the real clocks, or one a test steps by hand."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Where the poller gets its time; tests pass one they step by hand."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch: the time stamped on readings."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: the schedule runs on it."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once monotonic() has reached deadline."""
        ...


class SystemClock:
    """The real clocks."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the monotonic clock reaches deadline."""
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
