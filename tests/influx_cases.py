"""Shared by the InfluxDB store tests: a config file pointing at a real server, readings, and
InfluxQL / export queries to read back what arrived."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

T0 = 1_774_738_800_000  # 2026-03-28T23:00:00Z = local midnight, 29 March (a DST day)
STEP = 60_000
TIMEOUT_S = 10.0

DEVICES = [
    {"id": "meter-1", "site": "serverrum", "kind": "meter", "rated_power_w": 20000},
    {"id": "server-1", "site": "serverrum", "kind": "server", "rated_power_w": 1000},
    {"id": "sub-1", "site": "serverrum", "kind": "server", "metered_by": "meter-1"},
    {"id": "pc-1", "site": "skola1", "group": "elevdatorer", "kind": "pc"},
    {"id": "pc-2", "site": "skola1", "group": "elevdatorer", "kind": "pc"},
]


def write_config(folder: Path, store: dict[str, Any]) -> Path:
    """A config with two sites, a group, a meter with a sub-metered server, and PCs."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "municipality": {"name": "Testkommun"},
        "sites": [{"id": "serverrum", "kind": "server_room"}, {"id": "skola1", "kind": "school"}],
        "groups": [{"id": "elevdatorer"}],
        "devices": DEVICES,
        "store": {"path": "gronkoll-data", **store},
    }
    path = folder / "gronkoll.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def v1_store(url: str, database: str, **extra: Any) -> dict[str, Any]:
    """The store section for InfluxDB 1.x."""
    return {"kind": "influxdb", "url": url, "api": "v1", "database": database, **extra}


def v2_store(url: str, **extra: Any) -> dict[str, Any]:
    """The store section for the v2 write API."""
    return {
        "kind": "influxdb",
        "url": url,
        "org": "kommunen",
        "bucket": "gronkoll",
        "token": "test-token",
        **extra,
    }


def readings(count: int, *, start: int = T0) -> list[tuple[str, str, int, float]]:
    """`count` readings in time order: a meter counter, power of two servers, PC states."""
    out: list[tuple[str, str, int, float]] = []
    per_round = 5
    for i in range(-(-count // per_round)):
        t = start + i * STEP
        out += [
            ("meter-1", "energy_wh_total", t, 1000.0 + i * 5.0),
            ("server-1", "power_w", t, 200.0 + (i % 7)),
            ("sub-1", "power_w", t, 100.0 + (i % 3)),
            ("pc-1", "state", t, float(i // 30 % 4)),
            ("pc-2", "power_w", t, 40.0 + (i % 5)),
        ]
    return out[:count]


def new_database(influx_url: str) -> str:
    """A fresh database on the InfluxDB 1.x server."""
    name = "gk_" + uuid.uuid4().hex[:10]
    influxql(influx_url, f'CREATE DATABASE "{name}"')
    return name


def influxql(url: str, q: str, db: str | None = None) -> list[dict[str, Any]]:
    """Run InfluxQL; the series of the first statement (epoch ms)."""
    params = {"q": q, "epoch": "ms"}
    if db:
        params["db"] = db
    method = "GET" if q.lstrip().upper().startswith(("SELECT", "SHOW")) else "POST"
    response = httpx.request(method, f"{url}/query", params=params, timeout=TIMEOUT_S)
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, result
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def scalar(url: str, q: str, db: str) -> float:
    """The single value an InfluxQL aggregate returns (0 when there are no rows)."""
    series = influxql(url, q, db)
    return float(series[0]["values"][0][1]) if series else 0.0


def export(vm_url: str, match: str) -> list[dict[str, Any]]:
    """Series from VictoriaMetrics' /api/v1/export, after a forced flush."""
    httpx.get(f"{vm_url}/internal/force_flush", timeout=TIMEOUT_S).raise_for_status()
    response = httpx.get(
        f"{vm_url}/api/v1/export",
        params={"match[]": match, "start": "2020-01-01T00:00:00Z"},
        timeout=TIMEOUT_S,
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll until the condition holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {condition}")
        time.sleep(0.05)
