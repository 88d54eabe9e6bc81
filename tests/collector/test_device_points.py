"""The collector's gronkoll_device status points: their lines, and `collect --once` writing
them to a real InfluxDB 1.6 when the store is InfluxDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import servers
from influx_data import create_database

from gronkoll.cli import main
from gronkoll.collector.device_points import device_lines
from gronkoll.settings import Device
from gronkoll.statedb import StatusUpdate
from gronkoll.stores.influxql import InfluxReader

AT = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
DEVICES = {
    "pdu 1": Device(id="pdu-1", site="server rum", kind="pdu"),
    "ups-1": Device(id="ups-1", site="serverrum", kind="ups"),
}


def status(device: str, failures: int, success: datetime | None, poll: datetime | None = AT):
    return StatusUpdate(
        device_id=device,
        last_seen=success,
        last_success=success,
        last_error=None if not failures else "no answer",
        last_error_at=None if not failures else poll,
        consecutive_failures=failures,
        last_poll_at=poll,
        last_duration_s=0.1,
        profile=None,
        profile_reason=None,
        problems=(),
        last_problem=None,
        last_problem_at=None,
    )


def test_lines_say_up_failures_and_age_at_the_poll_time() -> None:
    lines = device_lines(
        [
            status("pdu 1", 0, AT),
            status("ups-1", 3, AT - timedelta(minutes=5)),
            status("new-1", 2, None),  # never answered, and not configured (any more)
            status("idle-1", 0, None, poll=None),  # never polled: no point
        ],
        DEVICES.get,
    )
    t = int(AT.timestamp() * 1000)
    assert lines == [
        rf"gronkoll_device,device=pdu\ 1,kind=pdu,site=server\ rum up=1.0,consecutive_failures=0.0,last_success_age_s=0.000 {t}",
        f"gronkoll_device,device=ups-1,kind=ups,site=serverrum up=0.0,consecutive_failures=3.0,last_success_age_s=300.000 {t}",
        f"gronkoll_device,device=new-1 up=0.0,consecutive_failures=2.0 {t}",
    ]


@pytest.mark.integration
def test_collect_once_writes_device_status_to_influxdb(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snmpd: servers.Snmpd,
    influxdb: servers.InfluxDB,
) -> None:
    database = create_database(influxdb)
    dead_port = servers.free_udp_port()
    config = tmp_path / "gronkoll.yaml"
    config.write_text(
        f"""\
municipality: {{name: Exempelby}}
sites:
  - {{id: serverrum, kind: server_room}}
devices:
  - id: srv-1
    site: serverrum
    kind: server
    profile: host-resources
    snmp: {{host: {snmpd.host}, port: {snmpd.port}, community: {json.dumps(snmpd.community)}}}
  - id: dead-1
    site: serverrum
    kind: ups
    snmp: {{host: 127.0.0.1, port: {dead_port}, community: public, timeout_s: 0.3, retries: 0}}
store: {{kind: influxdb, api: v1, url: "{influxdb.url}", database: {database}, path: data}}
""",
        encoding="utf-8",
    )
    assert main(["-c", str(config), "collect", "--once"]) == 0, capsys.readouterr().err
    reader = InfluxReader(influxdb.url, database=database, tz=ZoneInfo("UTC"))
    (series,) = reader.query(
        'SELECT last("up") AS up, last("consecutive_failures") AS failures '
        'FROM "gronkoll_device" GROUP BY "device", "site", "kind"'
    )
    reader.close()
    found = {tags["device"]: (tags["site"], tags["kind"], rows[0][1:]) for tags, _, rows in series}
    assert found == {
        "srv-1": ("serverrum", "server", [1, 0]),
        "dead-1": ("serverrum", "ups", [0, 1]),
    }
