"""The Grafana dashboard: well-formed for import, and every query in it answers on demo data."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from influx_data import run_demo
from servers import InfluxDB

from gronkoll.stores.influxql import InfluxReader
from gronkoll.timeparse import local_midnight_ms

DAYS = 2
DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "gronkoll.json"


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, InfluxQL) of every panel target and every query variable."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["query"])
        for p in dashboard["panels"]
        for t in p["targets"]
    ]
    out += [
        (f"variable ${v['name']}", v["query"])
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return out


def substitute(query: str, start_ms: int, end_ms: int) -> str:
    """Grafana's macros and variables as Grafana fills them in for "All" over the range."""
    values = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": "1h",  # about what Grafana picks for a few days on a wide panel
        "site": ".*",  # the variables' allValue
        "kind": ".*",
        "tz": "Europe/Stockholm",
    }
    out = re.sub(r"\$(\w+)", lambda m: values[m.group(1)], query)
    assert not re.search(r"\$\w", out), out  # every variable filled in
    return out


def test_the_dashboard_is_ready_to_import() -> None:
    dashboard = load()
    (source,) = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "influxdb")
    ds = {"type": "influxdb", "uid": "${" + source["name"] + "}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == ds, panel["title"]
        assert panel["description"], panel["title"]  # what the panel shows, for everyone
        for target in panel["targets"]:
            assert target["rawQuery"] is True and target["datasource"] == ds
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for subject in ("power now by site and kind", "energy per day", "pdu and ups", "overnight"):
        assert subject in titles
    assert "spool" in titles and "device status" in titles


@pytest.fixture(scope="module")
def demo_reader(
    influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InfluxReader, int]]:
    """Two days of the demo, ending today, in InfluxDB through the real store; a reader on
    it and when the simulated days began (ms)."""
    database = f"grafana_{uuid.uuid4().hex[:10]}"
    folder = tmp_path_factory.mktemp("grafana-demo")
    tz = ZoneInfo("Europe/Stockholm")
    today = datetime.now(tz).date()
    run_demo(folder, DAYS, today, influxdb=influxdb.url, influxdb_database=database)
    reader = InfluxReader(influxdb.url, database=database, tz=tz)
    yield reader, local_midnight_ms(today - timedelta(days=DAYS), tz)
    reader.close()


@pytest.mark.integration
def test_every_query_returns_rows_on_demo_data(demo_reader: tuple[InfluxReader, int]) -> None:
    reader, start = demo_reader
    end = int(time.time() * 1000)  # as Grafana's "now-2d to now"
    found = queries(load())
    assert len(found) >= 14
    empty = []
    for where, query in found:
        (series,) = reader.query(substitute(query, start, end))
        if not any(values for _, _, values in series):
            empty.append(where)
    assert not empty, f"no rows from: {empty}"
