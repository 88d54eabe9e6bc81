"""InfluxQL reads against a real InfluxDB 1.6: local days across DST, hours, latest, events."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from influx_data import create_database, influx_post, write_lines
from pydantic import SecretStr
from servers import InfluxDB, start_influxdb

from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.stores.influxql import InfluxReader, quote_ident, quote_string

pytestmark = pytest.mark.integration

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HOUR = 3_600_000


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def hourly_lines(first: datetime, hours: int, wh: float = 1.0) -> list[str]:
    """Two devices: pc-1 at school (1 Wh each hour), pdu-1 measured by a meter (no site)."""
    lines = []
    for h in range(hours):
        t = ms(first) + h * HOUR
        lines.append(
            f"energy,device=pc-1,group=ungrouped,kind=pc,quantity=electricity,site=skola wh={wh} {t}"
        )
        lines.append(f"energy,device=pdu-1,group=it,kind=pdu,quantity=electricity wh={2 * wh} {t}")
    return lines


@pytest.fixture
def reader(influxdb: InfluxDB) -> InfluxReader:
    database = create_database(influxdb)
    return InfluxReader(influxdb.url, database=database, tz=STOCKHOLM, chunk_size=7)


def test_local_days_follow_dst_in_march_and_october(influxdb: InfluxDB, reader: InfluxReader):
    # Every UTC hour of five days around each change; the local days are 23 and 25 hours long.
    spring, autumn = datetime(2026, 3, 26, 23, tzinfo=UTC), datetime(2026, 10, 22, 22, tzinfo=UTC)
    write_lines(influxdb, reader.database, hourly_lines(spring, 5 * 24 - 1))
    write_lines(influxdb, reader.database, hourly_lines(autumn, 5 * 24 + 1))

    march = reader.energy_by_day("electricity", "site", date(2026, 3, 27), date(2026, 4, 1))
    assert march == [(date(2026, 3, d), "skola", 23.0 if d == 29 else 24.0) for d in range(27, 32)]
    october = reader.energy_by_day("electricity", "site", date(2026, 10, 23), date(2026, 10, 28))
    assert october == [
        (date(2026, 10, d), "skola", 25.0 if d == 25 else 24.0) for d in range(23, 28)
    ]
    # A device another meter measures has no site, but still counts by group, kind, device.
    kinds = reader.energy_by_day("electricity", "kind", date(2026, 10, 25), date(2026, 10, 26))
    assert sorted(kinds) == [(date(2026, 10, 25), "pc", 25.0), (date(2026, 10, 25), "pdu", 50.0)]
    devices = reader.energy_by_day("electricity", "device", date(2026, 3, 29), date(2026, 3, 30))
    assert sorted(devices) == [
        (date(2026, 3, 29), "pc-1", 23.0),
        (date(2026, 3, 29), "pdu-1", 46.0),
    ]
    assert reader.energy_by_day("heat", "site", date(2026, 3, 27), date(2026, 4, 1)) == []


def test_hours_cover_the_whole_hours_the_range_touches(influxdb: InfluxDB, reader: InfluxReader):
    first = datetime(2026, 3, 29, 0, tzinfo=UTC)
    write_lines(influxdb, reader.database, hourly_lines(first, 6))
    start = ms(first) + HOUR + 1  # inside the second hour: the whole hour counts, as in SQLite
    rows = reader.energy_by_hour("electricity", "group", start, start + 2 * HOUR)
    assert sorted(rows) == sorted(
        (ms(first) + h * HOUR, key, wh)
        for h in (1, 2, 3)
        for key, wh in (("ungrouped", 1.0), ("it", 2.0))
    )
    sites = reader.energy_by_hour("electricity", "site", ms(first), ms(first) + 6 * HOUR)
    assert {key for _, key, _ in sites} == {"skola"}  # the metered PDU has no site


def test_latest_last_times_events_and_counts(influxdb: InfluxDB, reader: InfluxReader):
    t0 = ms(datetime(2026, 5, 4, 8, tzinfo=UTC))
    write_lines(
        influxdb,
        reader.database,
        [
            f"reading,device=pc-1,group=ungrouped,kind=pc,site=skola power_w=50,state=0 {t0}",
            f"reading,device=pc-1,group=ungrouped,kind=pc,site=skola power_w=55 {t0 + 60_000}",
            f"reading,device=pdu-1,group=it,kind=pdu,site=rum energy_wh_total=1000 {t0 + 5}",
            f'rejected,device=pc-1,group=ungrouped,kind=pc,site=skola power_w=9e9,reason="implausible" {t0 + 1}',
            f'event,device=pc-1,kind=gap detail="no reading for 2 h" {t0}',
            f'event,device=pdu-1,kind=reset detail="counter \\"reset\\"" {t0 + 10}',
            f"energy,device=pc-1,group=ungrouped,kind=pc,quantity=electricity,site=skola wh=1 {t0}",
        ],
    )
    assert reader.latest("power_w") == {"pc-1": (t0 + 60_000, 55.0)}
    assert reader.latest("state") == {"pc-1": (t0, 0.0)}
    assert reader.last_times() == {
        ("pc-1", "power_w"): t0 + 60_000,
        ("pc-1", "state"): t0,
        ("pdu-1", "energy_wh_total"): t0 + 5,
    }
    assert reader.events() == [
        ("pdu-1", t0 + 10, "reset", 'counter "reset"'),
        ("pc-1", t0, "gap", "no reading for 2 h"),
    ]
    assert reader.events("pc-1", limit=5) == [("pc-1", t0, "gap", "no reading for 2 h")]
    assert reader.events("it's-nobody") == []
    assert reader.counts() == {"readings": 5, "intervals": 1, "events": 2}


def test_an_empty_database_reads_as_empty(reader: InfluxReader):
    assert reader.last_times() == {}
    assert reader.latest("power_w") == {}
    assert reader.events() == []
    assert reader.counts() == {"readings": 0, "intervals": 0, "events": 0}
    assert reader.energy_by_hour("electricity", "site", 0, 10 * HOUR) == []


def test_a_long_answer_comes_in_chunks_and_is_joined(influxdb: InfluxDB, reader: InfluxReader):
    first = datetime(2026, 1, 1, tzinfo=UTC)
    write_lines(influxdb, reader.database, hourly_lines(first, 24 * 10))
    rows = reader.energy_by_hour("electricity", "device", ms(first), ms(first + timedelta(days=10)))
    assert len(rows) == 2 * 24 * 10  # chunk_size 7: dozens of chunks, partial series joined
    assert sum(wh for _, _, wh in rows) == 3.0 * 24 * 10


def test_unknown_database_and_unreachable_server_name_url_and_database(influxdb: InfluxDB):
    missing = InfluxReader(influxdb.url, database="no_such_db", tz=STOCKHOLM)
    with pytest.raises(StoreError, match=r"no_such_db.*database not found"):
        missing.counts()
    gone = InfluxReader("http://127.0.0.1:9", database="gronkoll", tz=STOCKHOLM, timeout_s=2)
    with pytest.raises(StoreUnavailable, match=r"http://127.0.0.1:9 \(database 'gronkoll'\)"):
        gone.events()


def test_a_bad_query_is_a_store_error(reader: InfluxReader):
    with pytest.raises(StoreError, match="error parsing query"):
        reader.query("SELECT FROM")


def test_identifiers_and_strings_are_quoted():
    assert quote_ident('current_a[1] "x"') == '"current_a[1] \\"x\\""'
    assert quote_string("it's \\ ok") == "'it\\'s \\\\ ok'"


@pytest.fixture(scope="module")
def influxdb_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """An InfluxDB 1.6 that asks for credentials: admin user 'gronkoll'."""
    with start_influxdb(tmp_path_factory.mktemp("influx-auth"), auth=True) as server:
        q = "CREATE USER gronkoll WITH PASSWORD 'rätt lösen' WITH ALL PRIVILEGES"
        influx_post(server, "/query", {"q": q}, b"")  # the first user needs no credentials
        yield server


def test_user_and_password_go_as_basic_auth(influxdb_auth: InfluxDB, tmp_path: Path):
    good = InfluxReader(
        influxdb_auth.url,
        database="gronkoll",
        tz=STOCKHOLM,
        username="gronkoll",
        password=SecretStr("rätt lösen"),
    )
    good.query('CREATE DATABASE "gronkoll"')
    assert good.counts() == {"readings": 0, "intervals": 0, "events": 0}
    wrong = InfluxReader(
        influxdb_auth.url,
        database="gronkoll",
        tz=STOCKHOLM,
        username="gronkoll",
        password=SecretStr("fel-lösen"),
    )
    with pytest.raises(StoreError, match=r"database 'gronkoll'\) refused the credentials") as err:
        wrong.counts()
    assert "fel-lösen" not in str(err.value)
    anonymous = InfluxReader(influxdb_auth.url, database="gronkoll", tz=STOCKHOLM)
    with pytest.raises(StoreError, match="refused the credentials"):
        anonymous.events()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers /query as InfluxDB 2.x's v1-compatible endpoint would, and keeps the requests."""

    seen: ClassVar[list[tuple[str, str, dict[str, list[str]]]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.seen.append((self.path, self.headers.get("Authorization", ""), parse_qs(body)))
        answer = b'{"results":[{"statement_id":0,"series":[{"name":"event","columns":["time","detail","device","kind"],"values":[[1000,"x","pc-1","gap"]]}]}]}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_a_token_goes_in_the_authorization_header():
    # No InfluxDB 2.x or 3.x can run here (and 1.6 does not know tokens), so a small local
    # HTTP server stands in for one and records what the reader sends.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        reader = InfluxReader(
            f"http://127.0.0.1:{server.server_port}",
            database="gronkoll",
            retention_policy="autogen",
            tz=STOCKHOLM,
            token=SecretStr("hemlig-token"),
        )
        assert reader.events() == [("pc-1", 1000, "gap", "x")]
    finally:
        server.shutdown()
        server.server_close()
    path, authorization, form = _Recorder.seen[-1]
    assert path == "/query"  # nothing in the URL
    assert authorization == "Token hemlig-token"
    assert form["db"] == ["gronkoll"] and form["rp"] == ["autogen"] and form["epoch"] == ["ms"]
    assert "u" not in form and "p" not in form
