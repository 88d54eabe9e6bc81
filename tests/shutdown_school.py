"""A school for shutdown tests: its config on a real Mosquitto, and a controllable clock."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import servers
import yaml
from agent_procs import KEY as AGENT_KEY

from gronkoll.mqtt_client import BrokerAccess
from gronkoll.settings import Settings, load_settings

KEY = AGENT_KEY  # the key the real agents of tests/agent_procs.py hold
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

    def id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def access(self) -> BrokerAccess:
        return BrokerAccess(host=self.mosquitto.host, port=self.mosquitto.port)

    def settings(self) -> Settings:
        return load_settings(self.path)


def write_school(
    folder: Path,
    mosquitto: servers.Mosquitto,
    pcs: list[str],
    *,
    plugs: tuple[str, ...] = (),
    exempt: tuple[str, ...] = (),
    prefix: str | None = None,
    **policy: object,
) -> School:
    """A config file with these computers (named prefix-name), a plug for some, and one
    policy over their group; shutdown settings (verify_deadline_s, retries) and policy keys
    (audit_only, skip_if_active_minutes, ...) come as keywords."""
    prefix = prefix or "t" + uuid.uuid4().hex[:6]
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
    settings = {k: policy.pop(k) for k in ("verify_deadline_s", "retries") if k in policy}
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
                    **policy,
                }
            ],
            **settings,
        },
    }
    path = folder / "gronkoll.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return School(path=path, prefix=prefix, mosquitto=mosquitto)
