"""Test helpers for InfluxDB 1.6: a fresh database per test, and plain HTTP /write of lines."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid

from servers import InfluxDB


def influx_post(server: InfluxDB, path: str, params: dict[str, str], body: bytes) -> bytes:
    """POST to the server's HTTP API and return the answer; fail the test on an error status."""
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        return bytes(resp.read())


def create_database(server: InfluxDB, prefix: str = "gk") -> str:
    """A new, empty database with a unique name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    answer = influx_post(server, "/query", {"q": f'CREATE DATABASE "{name}"'}, b"")
    assert "error" not in json.loads(answer)["results"][0]
    return name


def write_lines(server: InfluxDB, database: str, lines: list[str], batch: int = 20_000) -> None:
    """Write line protocol (precision ms) in batches through /write."""
    for i in range(0, len(lines), batch):
        body = "\n".join(lines[i : i + batch]).encode()
        influx_post(server, "/write", {"db": database, "precision": "ms"}, body)
