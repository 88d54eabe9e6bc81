"""The state database (SQLAlchemy 2, Alembic): device status, integration state, API keys,
quarantined MQTT messages and meetings."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from gronkoll.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from gronkoll.audit import AuditRecord

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
    # MQTT activity (collector/mqtt_journal.py): messages taken, of them quarantined, the last
    mqtt_messages: Mapped[int | None] = mapped_column(BigInteger)
    mqtt_quarantined: Mapped[int | None] = mapped_column(BigInteger)
    mqtt_last_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mqtt_last_topic: Mapped[str | None] = mapped_column(Text)

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


class QuarantinedMessage(Base):
    """An MQTT message (or part of one) that could not be used, and why."""

    __tablename__ = "mqtt_quarantine"
    __table_args__ = (
        Index("mqtt_quarantine_time", "received_at"),
        Index("mqtt_quarantine_device", "device_id", "received_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    device_id: Mapped[str | None] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # at most 4 KiB of it
    payload_bytes: Mapped[int] = mapped_column(Integer)  # the whole payload's size
    reason: Mapped[str] = mapped_column(Text)
    # sha256 of time, topic, payload and reason: a redelivered or replayed message is kept once
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)


class Meeting(Base):
    """A meeting in a room: when it started and ended, and how many took part per site."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("room", "meeting_id", name="meetings_room_meeting"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room: Mapped[str] = mapped_column(String(64))  # the room's device id
    meeting_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    participants: Mapped[str] = mapped_column(Text)  # JSON {"<site id>": count}; never names
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def participants_by_site(self) -> dict[str, int]:
        """Participants per site id."""
        return {str(k): int(v) for k, v in json.loads(self.participants).items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineEntry:
    """One reason an MQTT message, or a value in it, was not used."""

    t_ms: int  # when the message was received, ms since the epoch UTC
    topic: str
    device_id: str | None
    payload: str  # at most 4 KiB of the payload text
    payload_bytes: int
    reason: str

    @property
    def fingerprint(self) -> str:
        """What makes this entry the same as a redelivered or replayed one."""
        text = "\0".join((str(self.t_ms), self.topic, self.payload, self.reason))
        return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class MeetingEvent:
    """A meeting started or ended in a room, with participants counted per site."""

    room: str
    meeting_id: str
    event: Literal["started", "ended"]
    t_ms: int
    participants: Mapping[str, int]


# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; elsewhere 64 bits.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class MqttSeen(Base):
    """A message taken from the broker: its key (packet id, topic, payload), first receive time."""

    __tablename__ = "mqtt_seen"
    __table_args__ = (Index("mqtt_seen_session", "session", "id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    session: Mapped[str] = mapped_column(String(255))  # client id @ broker host:port
    key: Mapped[int] = mapped_column(BigInteger)  # 64 bits of a hash
    received_ms: Mapped[int] = mapped_column(BigInteger)


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
        names = [f.name for f in fields(StatusUpdate)]
        for u in updates:
            # A shallow copy: asdict deep-copies every value, which cost more than the SQL.
            row = {name: getattr(u, name) for name in names}
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

    # -- MQTT quarantine and meetings ----------------------------------------------------
    def record_mqtt(
        self, entries: Sequence[QuarantineEntry], meetings: Sequence[MeetingEvent]
    ) -> tuple[int, int]:
        """Keep quarantine entries and merge meeting events, in one transaction.

        Returns (entries newly kept, meeting events written); sending the same again changes
        nothing.
        """
        return _record_mqtt(self, entries, meetings)

    def quarantined(
        self, *, limit: int = 50, device: str | None = None
    ) -> list[QuarantinedMessage]:
        """The newest quarantined messages first, optionally of one device."""
        query = select(QuarantinedMessage)
        if device is not None:
            query = query.where(QuarantinedMessage.device_id == device)
        query = query.order_by(
            QuarantinedMessage.received_at.desc(), QuarantinedMessage.id.desc()
        ).limit(limit)
        with self._session() as s:
            return list(s.scalars(query))

    def prune_quarantine(self, before: datetime) -> int:
        """Delete quarantine entries received before a time; how many went."""
        query = delete(QuarantinedMessage).where(QuarantinedMessage.received_at < before)
        with self._session() as s, s.begin():
            return int(s.execute(query).rowcount or 0)  # type: ignore[attr-defined]

    def quarantine_counts(self) -> dict[str | None, int]:
        """How many quarantine entries each device has (None: no device could be told)."""
        query = select(QuarantinedMessage.device_id, func.count()).group_by(
            QuarantinedMessage.device_id
        )
        with self._session() as s:
            return {device: int(n) for device, n in s.execute(query)}

    def meetings(self, room: str | None = None) -> list[Meeting]:
        """Meetings, oldest first (by start, else end), optionally in one room."""
        query = select(Meeting)
        if room is not None:
            query = query.where(Meeting.room == room)
        with self._session() as s:
            rows = list(s.scalars(query))
        return sorted(rows, key=lambda m: (m.started_at or m.ended_at or _now(), m.id))

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

    # -- audit log and shutdown results (gronkoll/audit.py, gronkoll/shutdown_results.py) --
    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """One transaction; a database error becomes Gronkoll's own, saying what failed."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as err:
            raise StoreUnavailable(
                f"{_safe_url(self.url)}: state database unavailable: {err.orig}"
            ) from None
        except SQLAlchemyError as err:
            raise StoreError(f"{_safe_url(self.url)}: {what}: {err}") from None

    def session(self) -> AbstractContextManager[Session]:
        """An ORM session whose database errors become Gronkoll's own."""
        return self._session()

    def audit(self, **fields: Any) -> None:
        """Append one line to the audit log (the fields of gronkoll.audit.AuditRecord)."""
        from gronkoll.audit import AuditRecord, append

        append(self, [AuditRecord(**fields)])

    def audit_many(self, records: Sequence[AuditRecord]) -> None:
        """Append audit records in one transaction."""
        from gronkoll.audit import append

        append(self, records)

    def audit_log(self, **filters: Any) -> list[AuditRecord]:
        """Audit records, oldest first: start, end (aware), device, policy, limit."""
        from gronkoll.audit import query

        return query(self, **filters)


# -- MQTT quarantine and meetings ------------------------------------------------------
def _record_mqtt(
    db: StateDB, entries: Sequence[QuarantineEntry], meetings: Sequence[MeetingEvent]
) -> tuple[int, int]:
    """Store quarantine entries and meeting events in one transaction.

    Both are idempotent, so a batch sent again (a redelivery, a replay) changes nothing:
    an entry already kept (same fingerprint) is skipped; a meeting keeps its earliest start,
    its latest end and, per site, the most participants any of its events reported.
    Returns (entries newly kept, meetings written).
    """
    if not entries and not meetings:
        return 0, 0
    try:
        with db.engine.begin() as conn:
            kept = _insert_quarantine(conn, entries) if entries else 0
            for m in sorted(meetings, key=lambda m: m.t_ms):
                _merge_meeting(conn, m)
    except OperationalError as err:
        raise StoreUnavailable(
            f"{_safe_url(db.url)}: state database unavailable: {err.orig}"
        ) from None
    except SQLAlchemyError as err:
        raise StoreError(
            f"{_safe_url(db.url)}: cannot store MQTT quarantine or meetings: {err}"
        ) from None
    return kept, len(meetings)


def _insert_quarantine(conn: Any, entries: Sequence[QuarantineEntry]) -> int:
    table = cast(Table, QuarantinedMessage.__table__)
    rows: dict[str, dict[str, Any]] = {}
    for e in entries:
        rows.setdefault(
            e.fingerprint,
            {
                "received_at": datetime.fromtimestamp(e.t_ms / 1000, UTC),
                "device_id": e.device_id,
                "topic": e.topic,
                "payload": e.payload,
                "payload_bytes": e.payload_bytes,
                "reason": e.reason,
                "fingerprint": e.fingerprint,
            },
        )
    prints = list(rows)
    known: set[str] = set()
    for i in range(0, len(prints), 500):  # under every database's parameter limit
        chunk = prints[i : i + 500]
        known.update(
            conn.scalars(select(table.c.fingerprint).where(table.c.fingerprint.in_(chunk)))
        )
    new = [r for f, r in rows.items() if f not in known]
    if new:
        conn.execute(insert(table), new)
    return len(new)


def _merge_meeting(conn: Any, m: MeetingEvent) -> None:
    table = cast(Table, Meeting.__table__)
    at = datetime.fromtimestamp(m.t_ms / 1000, UTC)
    row = conn.execute(
        select(table).where(table.c.room == m.room, table.c.meeting_id == m.meeting_id)
    ).first()
    counts = {str(k): int(v) for k, v in m.participants.items()}
    if row is None:
        conn.execute(
            insert(table).values(
                room=m.room,
                meeting_id=m.meeting_id,
                started_at=at if m.event == "started" else None,
                ended_at=at if m.event == "ended" else None,
                participants=json.dumps(counts, sort_keys=True),
                updated_at=_now(),
            )
        )
        return
    values: dict[str, Any] = {}
    started = _aware(row.started_at)
    ended = _aware(row.ended_at)
    if m.event == "started" and (started is None or at < started):
        values["started_at"] = at
    if m.event == "ended" and (ended is None or at > ended):
        values["ended_at"] = at
    merged = {str(k): int(v) for k, v in json.loads(row.participants).items()}
    for site, n in counts.items():
        merged[site] = max(n, merged.get(site, 0))
    text = json.dumps(merged, sort_keys=True)
    if text != row.participants:
        values["participants"] = text
    if values:
        values["updated_at"] = _now()
        conn.execute(update(table).where(table.c.id == row.id).values(**values))


def _aware(value: datetime | None) -> datetime | None:
    """A time read through a Core select (no type decorator on SQLite) with its zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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
