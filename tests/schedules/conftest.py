"""Fixtures of the shutdown tests: a school on the session's Mosquitto, simulated fleets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import servers
from shutdown_school import School, write_school

SchoolFactory = Callable[..., School]


@pytest.fixture
def school(tmp_path: Path, mosquitto: servers.Mosquitto) -> SchoolFactory:
    """Write a config: computers named by behaviour, a plug for some, one policy."""

    def make(pcs: list[str], **options: object) -> School:
        return write_school(tmp_path, mosquitto, pcs, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def fleets() -> Iterator[list[object]]:
    """Simulated fleets started by a test, stopped (and their retained states cleared) after."""
    started: list[object] = []
    yield started
    for fleet in started:
        fleet.stop()  # type: ignore[attr-defined]
