"""Fixtures shared by the whole test suite, one section per concern."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import influx_data
import pytest
import servers
from agent_procs import Watcher
from sqlalchemy import create_engine, text

from gronkoll.statedb import StateDB

# --- Real servers (tests/servers.py) ---------------------------------------------------------
# One of each per test session, started on first use, on 127.0.0.1 and a free port, with its
# data under pytest's temp dir; stopped by PID when the session ends. A test that stops one
# (fault injection) starts it again, e.g. with `with influxdb.down(): ...`.

ServerT = TypeVar("ServerT", bound=servers.Server)


def _serve(
    start: Callable[[Path], ServerT], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[ServerT]:
    with _start_or_fail(start, tmp_path_factory.mktemp(name)) as server:
        yield server


def _start_or_fail(start: Callable[[Path], ServerT], data_dir: Path) -> ServerT:
    try:
        return start(data_dir)
    except (servers.ServerNotInstalled, servers.ServerFailedToStart) as err:
        message = str(err)
    pytest.fail(message, pytrace=False)  # out of the except block: the message shows once


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Mosquitto]:
    """A Mosquitto broker: anonymous listener and a user/password listener."""
    yield from _serve(servers.start_mosquitto, tmp_path_factory, "mosquitto")


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.InfluxDB]:
    """An InfluxDB 1.6 server (v1 HTTP API)."""
    yield from _serve(servers.start_influxdb, tmp_path_factory, "influxdb")


@pytest.fixture(scope="session")
def influx_demo(
    influxdb: servers.InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> influx_data.InfluxDemo:
    """Four days of the demo municipality (the 25-hour 25 October inside) in SQLite and InfluxDB."""
    return influx_data.build_influx_demo(
        tmp_path_factory.mktemp("influx-demo"), influxdb, date(2026, 10, 23), date(2026, 10, 27)
    )


@pytest.fixture(scope="session")
def victoriametrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[servers.VictoriaMetrics]:
    """A VictoriaMetrics server, for the influxdb-client (v2 API) write path."""
    yield from _serve(servers.start_victoriametrics, tmp_path_factory, "victoriametrics")


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Snmpd]:
    """A net-snmp agent with a v2c community and a v3 SHA/AES authPriv user."""
    yield from _serve(servers.start_snmpd, tmp_path_factory, "snmpd")


@pytest.fixture(scope="session")
def postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.PostgreSQL]:
    """A throw-away PostgreSQL cluster."""
    yield from _serve(servers.start_postgresql, tmp_path_factory, "postgresql")


# --- Configuration files ------------------------------------------------------------------------
# The minimal file the spine promises to accept as it is (issue 2); tests write it, or a variant
# with more sites and devices, into their own tmp_path.

MINIMAL_CONFIG = """\
municipality:
  name: Exempelby
  timezone: Europe/Stockholm
sites:
  - {id: skola1, name: Exempelskolan, kind: school, latitude: 55.3751, longitude: 13.1569}
devices:
  - {id: meter-1, site: skola1, kind: meter, rated_power_w: 20000}
  - {id: server-1, site: skola1, kind: server, rated_power_w: 1000}
store:
  kind: sqlite
  path: gronkoll-data        # relative to the config file's folder
"""

FLEET_CONFIG = """\
municipality: {name: Exempelby, timezone: Europe/Stockholm}
sites:
  - {id: skola1, name: Exempelskolan, kind: school}
  - {id: serverrum, name: Serverrummet, kind: server_room}
groups:
  - {id: elevdatorer, name: Elevdatorer}
devices:
  - {id: meter-1, site: serverrum, kind: meter, rated_power_w: 20000}
  - {id: server-1, site: serverrum, kind: server, rated_power_w: 1000}
  - {id: pc-1, site: skola1, group: elevdatorer, kind: pc}
  - {id: pc-2, site: skola1, group: elevdatorer, kind: pc}
store: {kind: sqlite, path: gronkoll-data, busy_timeout_s: 0.2}
"""


@pytest.fixture
def minimal_config(tmp_path: Path) -> Path:
    """The minimal config file from issue 2, written as is."""
    path = tmp_path / "gronkoll.yaml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def fleet_config(tmp_path: Path) -> Path:
    """A config with two sites, a group, a meter, a server and two PCs."""
    path = tmp_path / "gronkoll.yaml"
    path.write_text(FLEET_CONFIG, encoding="utf-8")
    return path


# --- snmpsim (tests/servers.py) ------------------------------------------------------------
# One snmpsim for the session, serving every recording in tests/fixtures/snmprec: the
# community is the file name without .snmprec (see tests/fixtures/snmprec/README.md).

SNMPREC_DIR = Path(__file__).parent / "fixtures" / "snmprec"


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Snmpsim]:
    """snmpsim (from .venv-sim) answering one community per recorded device."""

    def start(data_dir: Path) -> servers.Snmpsim:
        return servers.start_snmpsim(data_dir, recordings=SNMPREC_DIR)

    yield from _serve(start, tmp_path_factory, "snmpsim")


# --- State databases -----------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def state_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDB]:
    """A migrated state database, once on SQLite and once in a new database on a real
    PostgreSQL (the state-DB contract every backend keeps)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        pg: servers.PostgreSQL = request.getfixturevalue("postgresql")
        name = "gk_" + uuid.uuid4().hex[:12]
        admin = create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = pg.url.rsplit("/", 1)[0] + "/" + name
    db = StateDB(url)
    yield db
    db.close()


# --- Agents (tests/agent_procs.py) -------------------------------------------------------------


@pytest.fixture
def watcher(mosquitto: servers.Mosquitto) -> Iterator[Watcher]:
    """A subscriber to the agents' states and replies, and to the commands sent them."""
    w = Watcher(mosquitto.port)
    yield w
    w.close()
