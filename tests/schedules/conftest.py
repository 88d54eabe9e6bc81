"""A school with computers on a real Mosquitto, a controllable clock and a simulated fleet."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import servers
import yaml

from gronkoll.mqtt_client import BrokerAccess
from gronkoll.settings import Settings, load_settings

KEY = "skola1-signing-key-0123456789abcdef"
PLANNED = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # Tuesday 18:30 in Stockholm


class Clock:
    """Aware UTC time that starts at a chosen instant and runs `speed` times as fast as real
    time, so a five-minute deadline can pass in a fraction of a second without sleeping."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        self.start = start
        self.speed = speed
        self._real = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._real) * self.speed
        return self.start + timedelta(seconds=elapsed)


@dataclass
class School:
    """A config file for one test: its devices carry a prefix of their own, because the
    session's broker keeps retained agent states between tests."""

    path: Path
    prefix: str
    mosquitto: servers.Mosquitto
    extra_devices: list[dict[str, object]] = field(default_factory=list)

    def id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def access(self) -> BrokerAccess:
        return BrokerAccess(host=self.mosquitto.host, port=self.mosquitto.port)

    def settings(self) -> Settings:
        return load_settings(self.path)


SchoolFactory = Callable[..., School]


@pytest.fixture
def school(tmp_path: Path, mosquitto: servers.Mosquitto) -> SchoolFactory:
    """Write a config: pcs named by behaviour, a plug for some, one policy over the group."""

    def make(
        pcs: list[str],
        *,
        plugs: tuple[str, ...] = (),
        exempt: tuple[str, ...] = (),
        audit_only: bool = False,
        verify_deadline_s: int = 300,
        retries: int = 2,
    ) -> School:
        prefix = "t" + uuid.uuid4().hex[:6]
        devices: list[dict[str, object]] = []
        for name in pcs:
            device: dict[str, object] = {
                "id": f"{prefix}-{name}",
                "site": "skola1",
                "group": "elevdatorer",
                "kind": "pc",
            }
            if name in plugs:
                devices.append({"id": f"{prefix}-plug-{name}", "site": "skola1", "kind": "meter"})
                device["metered_by"] = f"{prefix}-plug-{name}"
            devices.append(device)
        config = {
            "municipality": {"name": "Exempelby", "timezone": "Europe/Stockholm"},
            "sites": [{"id": "skola1", "kind": "school"}],
            "groups": [{"id": "elevdatorer", "site": "skola1"}],
            "devices": devices,
            "store": {"kind": "sqlite", "path": "gronkoll-data"},
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "shutdown": {
                "signing_keys": {"skola1": KEY},
                "policies": [
                    {
                        "name": "skolor-kvall",
                        "groups": ["elevdatorer"],
                        "exempt_devices": [f"{prefix}-{n}" for n in exempt],
                        "shutdown": "30 18 * * mon-thu",
                        "calendar": "se-school",
                        "audit_only": audit_only,
                    }
                ],
                "verify_deadline_s": verify_deadline_s,
                "retries": retries,
            },
        }
        path = tmp_path / "gronkoll.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return School(path=path, prefix=prefix, mosquitto=mosquitto)

    return make


@pytest.fixture
def fleets() -> Iterator[list[object]]:
    """Simulated fleets started by a test, stopped (and their retained states cleared) after."""
    started: list[object] = []
    yield started
    for fleet in started:
        fleet.stop()  # type: ignore[attr-defined]
