"""Sending line protocol to InfluxDB: the v2 write API through influxdb-client, or v1 `/write`.

Both writers send one request per call, precision ms, optionally gzip-compressed, and turn
every failure into one of three errors the spool's sender acts on:

* ``StoreUnavailable``: try again later (unreachable, timeout, 5xx, 429);
* ``StoreRejected``: the server refused the lines themselves (400): resending cannot help;
* ``StoreError``: the configuration is wrong (token, database, bucket, endpoint): one clear
  message naming the URL and what to check.

Retries and their backoff belong to the sender (gronkoll/stores/influxdb.py), which keeps the
data in the spool meanwhile, so the library's own retries are off.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError

from gronkoll.errors import StoreError, StoreRejected, StoreUnavailable
from gronkoll.settings import InfluxdbStore


class Writer(Protocol):
    """Sends line protocol to one InfluxDB database or bucket."""

    target: str

    def send(self, body: bytes) -> None:
        """Write the lines, or raise StoreUnavailable, StoreRejected or StoreError."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_writer(config: InfluxdbStore) -> Writer:
    """The writer the store's ``api`` names."""
    return V2Writer(config) if config.api == "v2" else V1Writer(config)


def _server_text(status: int, body: bytes | str | None, error_header: str | None) -> str:
    text = error_header or ""
    if not text and body:
        raw = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            parsed: Any = json.loads(raw)
            text = str(parsed.get("message") or parsed.get("error") or raw)
        except (ValueError, AttributeError):
            text = raw
    return text.strip()[:300] or f"HTTP {status}"


def translate(status: int, text: str, target: str, *, api: str) -> StoreError:
    """The Gronkoll error for an HTTP answer from a write."""
    lower = text.lower()
    if status in (401, 403):
        what = "store.token" if api == "v2" else "store.username and store.password"
        return StoreError(f"{target} refused our credentials (HTTP {status}: {text}); check {what}")
    if status == 404 and "database not found" in lower:
        return StoreError(f"{target}: no such database ({text}); create it or fix store.database")
    if status == 404 and "bucket" in lower:
        return StoreError(f"{target}: no such bucket ({text}); fix store.bucket and store.org")
    if status == 404 and "organization" in lower:
        return StoreError(f"{target}: no such organization ({text}); fix store.org")
    if status == 404:
        hint = (
            "it has no /api/v2/write: InfluxDB 1.x before 1.8 speaks only the v1 API; set "
            "store.api: v1"
            if api == "v2"
            else "it has no /write: check store.url"
        )
        return StoreError(f"{target}: {hint} (HTTP 404: {text})")
    if "retention policy not found" in lower:
        return StoreError(f"{target}: {text}; fix store.retention_policy")
    if status == 400 or status == 422:
        return StoreRejected(f"{target} refused the lines (HTTP {status}: {text})")
    if status == 413:
        return StoreRejected(f"{target}: request too large (HTTP 413); lower store.batch_size")
    return StoreUnavailable(f"{target} did not take the write (HTTP {status}: {text})")


def _unreachable(target: str, err: BaseException) -> StoreUnavailable:
    reason = getattr(err, "reason", None) or err
    text = str(reason)
    if "Connection refused" in text:
        text = "connection refused"
    elif "Name or service not known" in text or "nodename nor servname" in text:
        text = "unknown host name"
    elif "reset by peer" in text or "aborted" in text.lower():
        text = "connection reset"
    elif "timed out" in text.lower():
        text = "timed out"
    return StoreUnavailable(f"{target} is unreachable ({text})")


class V2Writer:
    """influxdb-client's WriteApi, synchronous: one request per call (InfluxDB 2.x, 3.x, Cloud,
    1.8+ and anything else that takes /api/v2/write)."""

    def __init__(self, config: InfluxdbStore) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = config.token.get_secret_value() if config.token else ""
        self.target = f"InfluxDB at {config.url} (bucket {config.bucket!r}, org {config.org!r})"
        self._bucket = config.bucket or ""
        self._org = config.org or ""
        self._client = InfluxDBClient(
            url=config.url,
            token=token,
            org=self._org,
            timeout=round(config.timeout_s * 1000),
            enable_gzip=config.gzip,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def send(self, body: bytes) -> None:
        """POST /api/v2/write with the lines."""
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        precision: Any = WritePrecision.MS
        try:
            # An empty body is a probe: the server checks token, org and bucket all the same.
            # (A newline, as influxdb-client sends an empty record without a body.)
            self._write_api.write(
                bucket=self._bucket, org=self._org, record=body or b"\n", write_precision=precision
            )
        except ApiException as err:
            header = err.headers.get("X-Influxdb-Error") if err.headers else None
            text = _server_text(err.status or 0, err.body, header)
            raise translate(err.status or 0, text, self.target, api="v2") from None
        except HTTPError as err:
            raise _unreachable(self.target, err) from None

    def close(self) -> None:
        """Close the client's connections."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


class V1Writer:
    """POST /write?db=..&rp=..&precision=ms, for InfluxDB 1.x (user and password as basic auth,
    so they never appear in a URL or a log line)."""

    def __init__(self, config: InfluxdbStore) -> None:
        params = {"db": config.database or "", "precision": "ms"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self.target = f"InfluxDB at {config.url} (database {config.database!r})"
        self._url = f"{config.url.rstrip('/')}/write?{urlencode(params)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if config.username:
            secret = config.password.get_secret_value() if config.password else ""
            pair = f"{config.username}:{secret}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._gzip = config.gzip
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=config.timeout_s), retries=False
        )

    def send(self, body: bytes) -> None:
        """POST the lines to /write."""
        headers = dict(self._headers)
        if self._gzip and body:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            resp = self._pool.request("POST", self._url, body=body, headers=headers)
        except HTTPError as err:
            raise _unreachable(self.target, err) from None
        if resp.status >= 300:
            text = _server_text(resp.status, resp.data, resp.headers.get("X-Influxdb-Error"))
            raise translate(resp.status, text, self.target, api="v1")

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.clear()
