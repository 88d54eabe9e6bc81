"""Reads from InfluxDB through InfluxQL on the v1-compatible ``/query`` endpoint.

InfluxDB 1.x, 2.x (with a DBRP mapping) and 3.x all answer ``/query`` (DESIGN decision 3).
Energy comes from the ``energy`` measurement (one point per quantity, device and UTC hour,
field ``wh``, timestamp the hour's start; see docs/influxdb.md), so a report sums at most one
point per device and hour. Local days are cut by InfluxDB itself with ``tz()``, which follows
daylight-saving changes (a 23-hour day in March, a 25-hour day in October). Every name and
string put into a query goes through ``quote_ident`` or ``quote_string`` (hence the S608
waivers). Answers come in chunks (``chunked=true``), so a year by device is never one JSON
document.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import urllib3
from pydantic import SecretStr

from gronkoll.energy import MS_PER_HOUR
from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.stores.base import DIMENSIONS
from gronkoll.timeparse import local_midnight_ms

CHUNK_SIZE = 10_000
#: Series as the reader hands them on: (tags, rows of [time ms, value, ...] by column name).
Series = tuple[dict[str, str], list[str], list[list[Any]]]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (measurement, tag or field name)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxReader:
    """The read side of the InfluxDB store: InfluxQL over HTTP ``/query``.

    Authentication is a user and password (HTTP basic auth) for InfluxDB 1.x, or
    ``Authorization: Token ...`` for a 2.x or 3.x server (a database and retention policy mapped to a bucket by DBRP).
    """

    def __init__(
        self,
        url: str,
        *,
        database: str,
        tz: ZoneInfo,
        retention_policy: str | None = None,
        username: str | None = None,
        password: SecretStr | None = None,
        token: SecretStr | None = None,
        timeout_s: float = 30.0,
        chunk_size: int = CHUNK_SIZE,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.tz = tz
        self._rp = retention_policy
        self._username = username
        self._password = password
        self._token = token
        self._chunk_size = chunk_size
        self._pool = pool or urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
            retries=False,
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._pool.clear()

    # -- the HTTP edge -------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.url} (database {self.database!r})"

    def _request(self, q: str) -> urllib3.BaseHTTPResponse:
        fields = {
            "db": self.database,
            "q": q,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(self._chunk_size),
        }
        if self._rp:
            fields["rp"] = self._rp
        headers = {}
        if self._token is not None:
            headers["Authorization"] = f"Token {self._token.get_secret_value()}"
        elif self._username is not None:
            # Basic auth: InfluxDB 1.x takes u and p only in the URL, which servers log.
            password = self._password.get_secret_value() if self._password else ""
            pair = f"{self._username}:{password}".encode()  # UTF-8, as InfluxDB reads it
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        try:
            # POST keeps the query out of URLs (and server access logs).
            return self._pool.request(
                "POST",
                f"{self.url}/query",
                fields=fields,
                headers=headers,
                encode_multipart=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as err:
            # urllib3 puts the connection's repr first: keep the reason the system gave.
            reason = str(getattr(err, "reason", None) or err).rsplit("): ", 1)[-1]
            raise StoreUnavailable(
                f"InfluxDB at {self._where()} does not answer: {reason}"
            ) from err

    def query(self, q: str) -> list[list[Series]]:
        """Run one or more InfluxQL statements (``;`` between them): the series of each."""
        resp = self._request(q)
        try:
            if resp.status in (401, 403):
                raise StoreError(
                    f"InfluxDB at {self._where()} refused the credentials (HTTP {resp.status})"
                )
            if resp.status >= 400:
                raise StoreError(
                    f"InfluxDB at {self._where()} answered HTTP {resp.status}: "
                    f"{_error_text(resp.read())}"
                )
            results: dict[int, list[Series]] = {}
            partial: set[int] = set()  # statements whose last series goes on in the next chunk
            for chunk in _chunks(resp):
                self._collect(chunk, results, partial)
        except urllib3.exceptions.HTTPError as err:
            raise StoreUnavailable(
                f"InfluxDB at {self._where()} broke off its answer: {err}"
            ) from err
        finally:
            resp.release_conn()
        return [results[i] for i in sorted(results)]

    def _collect(
        self, chunk: Mapping[str, Any], results: dict[int, list[Series]], partial: set[int]
    ) -> None:
        if "error" in chunk:
            raise StoreError(f"InfluxDB at {self._where()}: {chunk['error']}")
        for result in chunk.get("results", []):
            if "error" in result:
                raise StoreError(f"InfluxDB at {self._where()}: {result['error']}")
            sid = int(result.get("statement_id", 0))
            out = results.setdefault(sid, [])
            for s in result.get("series", []):
                tags, values = s.get("tags") or {}, s.get("values") or []
                if sid in partial and out and out[-1][0] == tags:
                    out[-1][2].extend(values)  # the previous chunk's series goes on
                else:
                    out.append((tags, s["columns"], list(values)))
                if s.get("partial"):
                    partial.add(sid)
                else:
                    partial.discard(sid)

    # -- energy --------------------------------------------------------------------------
    def _energy(
        self, quantity: str, dim: str, start_ms: int, end_ms: int, every: str
    ) -> Iterator[tuple[int, str, float]]:
        if dim not in DIMENSIONS:
            raise StoreError(f"unknown dimension {dim!r}")
        tz = f" tz({quote_string(self.tz.key)})" if every == "1d" else ""
        q = (
            f'SELECT sum("wh") FROM "energy" WHERE "quantity"={quote_string(quantity)} '  # noqa: S608
            f"AND time >= {start_ms}ms AND time < {end_ms}ms "
            f"GROUP BY time({every}), {quote_ident(dim)} fill(none){tz}"
        )
        for tags, _, values in self.query(q)[0]:
            key = tags.get(dim, "")
            if not key:
                continue  # a device another meter measures has no site: counted there
            for t, wh in values:
                if wh is not None:
                    yield int(t), key, float(wh)

    def energy_by_hour(
        self, quantity: str, dim: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, str, float]]:
        """(hour start ms, key, Wh) per UTC hour in [start, end), whole hours as SQLite's."""
        first = start_ms // MS_PER_HOUR * MS_PER_HOUR
        end = -(-end_ms // MS_PER_HOUR) * MS_PER_HOUR
        return list(self._energy(quantity, dim, first, end, "1h"))

    def energy_by_day(
        self, quantity: str, dim: str, first: date, end: date
    ) -> list[tuple[date, str, float]]:
        """(local date, key, Wh) per local day in [first, end), days cut by InfluxDB's tz()."""
        start_ms, end_ms = local_midnight_ms(first, self.tz), local_midnight_ms(end, self.tz)
        return [
            (datetime.fromtimestamp(t / 1000, self.tz).date(), key, wh)
            for t, key, wh in self._energy(quantity, dim, start_ms, end_ms, "1d")
        ]

    # -- readings and events -------------------------------------------------------------
    def latest(self, field: str) -> dict[str, tuple[int, float]]:
        """The newest accepted (time ms, value) of a field, per device."""
        q = f'SELECT last({quote_ident(field)}) FROM "reading" GROUP BY "device"'  # noqa: S608
        return {
            tags["device"]: (int(values[-1][0]), float(values[-1][1]))
            for tags, _, values in self.query(q)[0]
            if values and "device" in tags
        }

    def fields(self) -> list[str]:
        """The reading fields stored."""
        series = self.query('SHOW FIELD KEYS FROM "reading"')[0]
        return sorted({str(row[0]) for _, _, values in series for row in values})

    def last_times(self) -> dict[tuple[str, str], int]:
        """The newest stored reading time per (device, field)."""
        fields = self.fields()
        if not fields:
            return {}
        statements = ";".join(
            f'SELECT last({quote_ident(f)}) FROM "reading" GROUP BY "device"'  # noqa: S608
            for f in fields
        )
        out: dict[tuple[str, str], int] = {}
        for f, series in zip(fields, self.query(statements), strict=True):
            for tags, _, values in series:
                if values and "device" in tags:
                    out[(tags["device"], f)] = int(values[-1][0])
        return out

    def events(
        self, device: str | None = None, limit: int = 100
    ) -> list[tuple[str, int, str, str]]:
        """The newest events (device, time ms, kind, detail), optionally of one device."""
        where = "" if device is None else f' WHERE "device"={quote_string(device)}'
        q = f'SELECT "detail", "device", "kind" FROM "event"{where} ORDER BY time DESC'  # noqa: S608
        q += f" LIMIT {int(limit)}"
        out: list[tuple[str, int, str, str]] = []
        for _, columns, values in self.query(q)[0]:
            at = {name: i for i, name in enumerate(columns)}
            out.extend(
                (str(r[at["device"]]), int(r[at["time"]]), str(r[at["kind"]]), str(r[at["detail"]]))
                for r in values
            )
        return out

    def counts(self) -> dict[str, int]:
        """Readings (accepted and rejected field values), energy device-hours and events.

        The schema keeps energy per device and hour, not per interval, so ``intervals``
        counts the stored (quantity, device, hour) energy points.
        """
        results = self.query(
            'SELECT count(*) FROM "reading";SELECT count(*) FROM "rejected";'
            'SELECT count("wh") FROM "energy";SELECT count("detail") FROM "event"'
        )
        totals = []
        for series in results:
            n = 0
            for _, columns, values in series:
                for row in values:
                    n += sum(
                        int(v or 0)
                        for c, v in zip(columns, row, strict=True)
                        if c.startswith("count") and c != "count_reason"
                    )
            totals.append(n)
        readings, rejected, hours, events = totals
        return {"readings": readings + rejected, "intervals": hours, "events": events}


def _chunks(resp: urllib3.BaseHTTPResponse) -> Iterator[dict[str, Any]]:
    """The JSON objects of a chunked /query answer, one per line."""
    buffer = b""
    for data in resp.stream(1 << 16):
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


def _error_text(body: bytes) -> str:
    """The error InfluxDB put in a failed answer's JSON, else the body's start."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace").strip() or "(no detail)"
