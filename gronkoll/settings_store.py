"""Config for the time-series store: embedded SQLite, or InfluxDB with its spool."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gronkoll.settings_base import Strict


class SqliteStore(Strict):
    kind: Literal["sqlite"] = "sqlite"
    path: str = "gronkoll-data"
    state_url: str | None = None
    busy_timeout_s: float = Field(default=5, ge=0)


class InfluxdbStore(Strict):
    """InfluxDB (docs/influxdb.md): v2 write API (token, org, bucket) or v1 /write (database)."""

    kind: Literal["influxdb"]
    url: str = Field(pattern=r"^https?://[^\s/]+")
    api: Literal["v2", "v1"] = "v2"
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    spool_path: str = "spool.sqlite"
    spool_max_mb: float = Field(default=1024, gt=0)
    batch_size: int = Field(default=5000, ge=1)
    gzip: bool = True
    timeout_s: float = Field(default=10, gt=0)
    query_timeout_s: float = Field(default=120, gt=0)  # InfluxQL reads: a year takes seconds
    retry_max_s: float = Field(default=60, ge=0.1)
    path: str = "gronkoll-data"
    state_url: str | None = None

    @model_validator(mode="after")
    def _api_keys(self) -> InfluxdbStore:
        if self.api == "v2":
            missing = [k for k in ("org", "bucket", "token") if not getattr(self, k)]
            if missing:
                raise ValueError(f"api v2 needs {', '.join(missing)} (api v1 needs database)")
        elif not self.database:
            raise ValueError("api v1 needs database (api v2 needs org, bucket and token)")
        return self
