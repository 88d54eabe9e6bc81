"""The state database (SQLAlchemy 2, Alembic): device status, integration state, API keys."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from gronkoll.errors import StoreError, StoreUnavailable

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
KEY_PREFIX = "gk_"


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """A time written in UTC and read back with its zone (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class DeviceStatus(Base):
    __tablename__ = "device_status"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_duration_s: Mapped[float | None] = mapped_column(Float)
    profile: Mapped[str | None] = mapped_column(String(64))
    profile_reason: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[str | None] = mapped_column(Text)  # JSON list: the last poll's problems
    last_problem: Mapped[str | None] = mapped_column(Text)
    last_problem_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def problem_list(self) -> list[str]:
        """The last poll's problems (missing objects, bad values), oldest first."""
        return list(json.loads(self.problems)) if self.problems else []


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """A device's whole status row as the poller knows it; written over the stored one."""

    device_id: str
    last_seen: datetime | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    last_poll_at: datetime | None
    last_duration_s: float | None
    profile: str | None
    profile_reason: str | None
    problems: tuple[str, ...]
    last_problem: str | None
    last_problem_at: datetime | None


class IntegrationState(Base):
    __tablename__ = "integration_state"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[int] = mapped_column(Integer, default=0)


def hash_key(key: str) -> str:
    """SHA-256 of an API key; keys are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class StateDB:
    """The relational state store, migrated to the newest schema on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreUnavailable(
                    f"{folder}: cannot create the store folder: {err.strerror}"
                ) from None
        self.engine: Engine = create_engine(url, connect_args=_connect_args(url))
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            migrate(self.engine)
        except OperationalError as err:
            raise StoreUnavailable(
                f"{_safe_url(url)}: cannot open the state database: {err.orig}"
            ) from None

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session whose database errors become Gronkoll's own."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except OperationalError as err:
            raise StoreUnavailable(
                f"{_safe_url(self.url)}: state database unavailable: {err.orig}"
            ) from None
        except SQLAlchemyError as err:
            raise StoreError(f"{_safe_url(self.url)}: state database error: {err}") from None

    # -- integration state ---------------------------------------------------------------
    def load_integration_states(self) -> dict[str, dict[str, Any]]:
        """Every device's saved integration state."""
        with self._session() as s:
            return {r.device_id: json.loads(r.state) for r in s.scalars(select(IntegrationState))}

    def save_integration_states(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Save integration states of the given devices in one transaction."""
        if not states:
            return
        now = _now()
        rows = [
            {"d": device, "s": json.dumps(state, separators=(",", ":")), "u": now}
            for device, state in states.items()
        ]
        table = cast(Table, IntegrationState.__table__)
        try:
            with self.engine.begin() as conn:
                existing = set(
                    conn.scalars(
                        select(table.c.device_id).where(table.c.device_id.in_(list(states)))
                    )
                )
                updates = [r for r in rows if r["d"] in existing]
                inserts = [r for r in rows if r["d"] not in existing]
                if updates:
                    conn.execute(
                        update(table)
                        .where(table.c.device_id == bindparam("d"))
                        .values(state=bindparam("s"), updated_at=bindparam("u")),
                        updates,
                    )
                if inserts:
                    conn.execute(
                        insert(table).values(
                            device_id=bindparam("d"),
                            state=bindparam("s"),
                            updated_at=bindparam("u"),
                        ),
                        inserts,
                    )
        except SQLAlchemyError as err:
            raise StoreError(
                f"{_safe_url(self.url)}: cannot save integration state: {err}"
            ) from None

    # -- device status -------------------------------------------------------------------
    def device_status(self) -> dict[str, DeviceStatus]:
        """Status of every device that has one."""
        with self._session() as s:
            return {r.device_id: r for r in s.scalars(select(DeviceStatus))}

    def save_device_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        """Write the given devices' status rows in one transaction (insert or replace)."""
        if not updates:
            return
        rows = []
        for u in updates:
            row = asdict(u)
            row["problems"] = json.dumps(list(u.problems)) if u.problems else None
            rows.append(row)
        table = cast(Table, DeviceStatus.__table__)
        try:
            with self.engine.begin() as conn:
                ids = [r["device_id"] for r in rows]
                existing: set[str] = set()
                for i in range(0, len(ids), 1000):  # under every database's parameter limit
                    chunk = ids[i : i + 1000]
                    existing.update(
                        conn.scalars(select(table.c.device_id).where(table.c.device_id.in_(chunk)))
                    )
                changed = [{**r, "d": r["device_id"]} for r in rows if r["device_id"] in existing]
                inserts = [r for r in rows if r["device_id"] not in existing]
                if changed:
                    columns = [c for c in rows[0] if c != "device_id"]
                    conn.execute(
                        update(table)
                        .where(table.c.device_id == bindparam("d"))
                        .values({c: bindparam(c) for c in columns}),
                        changed,
                    )
                if inserts:
                    conn.execute(insert(table), inserts)
        except SQLAlchemyError as err:
            raise StoreError(f"{_safe_url(self.url)}: cannot save device status: {err}") from None

    # -- API keys ------------------------------------------------------------------------
    def create_api_key(self, name: str, role: str) -> str:
        """Create a key and return it; only its hash is stored, so it is shown once."""
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._session() as s, s.begin():
            if s.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
                raise StoreError(f"an API key named {name!r} already exists")
            s.add(
                ApiKey(
                    name=name,
                    role=role,
                    prefix=key[:8],
                    key_hash=hash_key(key),
                    created_at=_now(),
                    revoked=0,
                )
            )
        return key

    def verify_api_key(self, key: str) -> ApiKey | None:
        """The key's record if it exists and is not revoked, else None."""
        with self._session() as s, s.begin():
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
            if row is None or row.revoked:
                return None
            row.last_used_at = _now()
            return row

    def list_api_keys(self) -> list[ApiKey]:
        """Every key's record (never the key itself)."""
        with self._session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke_api_key(self, name: str) -> bool:
        """Revoke a key by name; False when there is none."""
        with self._session() as s, s.begin():
            row = s.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                return False
            row.revoked = 1
            return True


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# Alembic keeps its running context in module state: one migration at a time per process.
_MIGRATION_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with _MIGRATION_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
