"""The test servers of tests/servers.py answer real clients, and come back after a crash."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import servers
import sqlalchemy
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.reasoncodes import ReasonCode
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)

pytestmark = pytest.mark.integration

TIMEOUT_S = 10.0


# --- Mosquitto ---------------------------------------------------------------------------


class MqttClient:
    """A paho-mqtt 2 client, connected (or refused), its messages gathered in a queue."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._suback: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self._suback.put(codes)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(servers.HOST, port)
        self.client.loop_start()
        self.reason = self._connack.get(timeout=TIMEOUT_S)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        if reason.is_failure:
            client.disconnect()  # no reconnect attempts
        self._connack.put(reason)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        (granted,) = self._suback.get(timeout=TIMEOUT_S)
        assert granted.value == 1, granted  # granted QoS 1

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT_S)  # the broker's PUBACK
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., MqttClient]]:
    """Connect paho clients that are closed after the test."""
    clients: list[MqttClient] = []

    def _connect(port: int, username: str | None = None, password: str | None = None) -> MqttClient:
        client = MqttClient(port, username, password)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()


@pytest.mark.parametrize("listener", ["anonymous", "password"])
def test_mosquitto_delivers_a_qos1_message(
    mosquitto: servers.Mosquitto, connect: Callable[..., MqttClient], listener: str
) -> None:
    credentials: tuple[str | None, str | None]
    if listener == "anonymous":
        port, credentials = mosquitto.port, (None, None)
    else:
        port, credentials = mosquitto.auth_port, (mosquitto.username, mosquitto.password)
    subscriber = connect(port, *credentials)
    publisher = connect(port, *credentials)
    assert not subscriber.reason.is_failure
    subscriber.subscribe(f"gk/{listener}/#")

    publisher.publish(f"gk/{listener}/plug-1", b'{"power_w": 42.5}')

    message = subscriber.messages.get(timeout=TIMEOUT_S)
    assert (message.topic, message.payload, message.qos) == (
        f"gk/{listener}/plug-1",
        b'{"power_w": 42.5}',
        1,
    )


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "anonymous"])
def test_mosquitto_refuses_a_wrong_password(
    mosquitto: servers.Mosquitto, connect: Callable[..., MqttClient], password: str | None
) -> None:
    username = mosquitto.username if password else None
    client = connect(mosquitto.auth_port, username, password)

    assert client.reason == "Not authorized"


def test_mosquitto_keeps_retained_messages_across_a_restart(
    mosquitto: servers.Mosquitto, connect: Callable[..., MqttClient]
) -> None:
    publisher = connect(mosquitto.port)
    publisher.publish("gk/retained/agent-1", b"online", retain=True)
    publisher.close()
    pid = mosquitto.pid

    mosquitto.restart()

    assert mosquitto.pid != pid
    subscriber = connect(mosquitto.port)
    subscriber.subscribe("gk/retained/#")
    assert subscriber.messages.get(timeout=TIMEOUT_S).payload == b"online"


# --- InfluxDB 1.6 --------------------------------------------------------------------------


def influxql(influxdb: servers.InfluxDB, q: str, db: str | None = None) -> dict[str, Any]:
    params = {"q": q, **({"db": db} if db else {})}
    method = "GET" if q.lstrip().upper().startswith("SELECT") else "POST"
    response = httpx.request(method, f"{influxdb.url}/query", params=params, timeout=TIMEOUT_S)
    response.raise_for_status()
    result: dict[str, Any] = response.json()["results"][0]
    assert "error" not in result, result
    return result


def test_influxdb_sums_energy_by_stockholm_day(influxdb: servers.InfluxDB) -> None:
    influxql(influxdb, "CREATE DATABASE gronkoll_servers")
    # 23:30 and 00:30 Stockholm time (UTC+1 in November) fall on two local days.
    lines = (
        "power,device=pdu-1 energy_wh=10 1732487400\n"  # 2024-11-24T22:30:00Z
        "power,device=pdu-1 energy_wh=20 1732491000\n"  # 2024-11-24T23:30:00Z
        "power,device=pdu-1 energy_wh=12.5 1732494600\n"  # 2024-11-25T00:30:00Z
    )
    response = httpx.post(
        f"{influxdb.url}/write",
        params={"db": "gronkoll_servers", "precision": "s"},
        content=lines,
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 204, response.text

    result = influxql(
        influxdb,
        "SELECT sum(energy_wh) FROM power "
        "WHERE time >= '2024-11-24T12:00:00Z' AND time < '2024-11-25T12:00:00Z' "
        "GROUP BY time(1d) tz('Europe/Stockholm')",
        db="gronkoll_servers",
    )

    (series,) = result["series"]
    assert series["values"] == [
        ["2024-11-24T00:00:00+01:00", 10],
        ["2024-11-25T00:00:00+01:00", 32.5],
    ]


def test_influxdb_keeps_acknowledged_writes_after_a_crash(influxdb: servers.InfluxDB) -> None:
    influxql(influxdb, "CREATE DATABASE gronkoll_crash")
    response = httpx.post(
        f"{influxdb.url}/write",
        params={"db": "gronkoll_crash", "precision": "s"},
        content="power,device=ups-1 energy_wh=7 1732487400\n",
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 204

    influxdb.restart(kill=True)

    result = influxql(influxdb, "SELECT sum(energy_wh) FROM power", db="gronkoll_crash")
    assert result["series"][0]["values"][0][1] == 7


# --- VictoriaMetrics -------------------------------------------------------------------------


def test_victoriametrics_takes_influxdb_client_writes(
    victoriametrics: servers.VictoriaMetrics,
) -> None:
    when = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
    point = (
        Point("power").tag("device", "pdu-7").field("power_w", 1234.5).time(when, WritePrecision.S)
    )
    with InfluxDBClient(url=victoriametrics.url, token="unused", org="gronkoll") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="gronkoll", record=point)
    httpx.get(f"{victoriametrics.url}/internal/force_flush", timeout=TIMEOUT_S).raise_for_status()

    response = httpx.get(
        f"{victoriametrics.url}/api/v1/export",
        params={"match[]": 'power_power_w{device="pdu-7"}'},
        timeout=TIMEOUT_S,
    )

    response.raise_for_status()
    (series,) = [json.loads(line) for line in response.text.splitlines()]
    assert series["metric"] == {"__name__": "power_power_w", "device": "pdu-7"}
    assert series["values"] == [1234.5]
    assert series["timestamps"] == [int(when.timestamp() * 1000)]


# --- net-snmp snmpd ------------------------------------------------------------------------


async def snmp_get_sys_name(snmpd: servers.Snmpd, version: str) -> str:
    engine = SnmpEngine()
    try:
        auth: CommunityData | UsmUserData
        if version == "v2c":
            auth = CommunityData(snmpd.community, mpModel=1)
        else:
            auth = UsmUserData(
                snmpd.v3_user,
                snmpd.auth_password,
                snmpd.priv_password,
                authProtocol=usmHMACSHAAuthProtocol,
                privProtocol=usmAesCfb128Protocol,
            )
        target = await UdpTransportTarget.create((snmpd.host, snmpd.port), timeout=2, retries=1)
        error_indication, error_status, _, var_binds = await get_cmd(
            engine, auth, target, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0"))
        )
        assert not error_indication, error_indication
        assert not error_status, error_status.prettyPrint()
        ((_, value),) = var_binds
        return str(value)
    finally:
        engine.close_dispatcher()


@pytest.mark.parametrize("version", ["v2c", "v3-authpriv"])
def test_snmpd_answers_sys_name(snmpd: servers.Snmpd, version: str) -> None:
    assert asyncio.run(snmp_get_sys_name(snmpd, version)) == snmpd.sys_name


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.parametrize("over", ["tcp", "unix-socket"])
def test_postgresql_answers_select_1(postgresql: servers.PostgreSQL, over: str) -> None:
    if over == "tcp":
        url = sqlalchemy.make_url(postgresql.url)
    else:  # trust on the socket: no password
        url = sqlalchemy.URL.create(
            "postgresql+psycopg",
            username=postgresql.user,
            database=postgresql.database,
            query={"host": str(postgresql.socket_dir), "port": str(postgresql.port)},
        )
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


# --- every server --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["mosquitto", "influxdb", "victoriametrics", "snmpd", "postgresql"]
)
def test_server_comes_back_on_its_port_after_a_crash(
    request: pytest.FixtureRequest, name: str
) -> None:
    server: servers.Server = request.getfixturevalue(name)
    port, pid = server.port, server.pid

    with server.down(kill=True):
        assert not server.process.running

    assert server.process.running
    assert (server.port, server.host) == (port, "127.0.0.1")
    assert server.pid != pid
