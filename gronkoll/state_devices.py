"""The state database's device tables: each device's poll status and integration state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from gronkoll.errors import StoreError
from gronkoll.multirow_insert import insert_rows, param_mark
from gronkoll.state_base import Base, StateConnection, UtcDateTime, _now, _safe_url


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


class DeviceStateStore(StateConnection):
    """Reading and writing device status and integration state."""

    # -- integration state ---------------------------------------------------------------
    def load_integration_states(self) -> dict[str, dict[str, Any]]:
        """Every device's saved integration state."""
        with self._session() as s:
            return {r.device_id: json.loads(r.state) for r in s.scalars(select(IntegrationState))}

    def save_integration_states(self, states: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Save integration states, (device, state) pairs, in one transaction.

        The collector saves every device it heard from every few seconds (10,000 devices a
        time in bench/mqtt_ingest.py), so this is shaped for bulk: pairs are encoded as they
        come (the Ingestor exports each state as it is taken: 10,000 states are never alive
        at once for the garbage collector to walk), one encoder serves every row, the time
        stamp is bound once, and multi-row upserts go straight to the driver (SQLite and
        PostgreSQL both take ON CONFLICT): less than half the cost per device of SQLAlchemy
        Core's select, update and insert with json.dumps (bench/store_write.py).
        """
        # The same text as json.dumps(state, separators=(",", ":")); no cycles to look for.
        encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
        texts = {device: encode(state) for device, state in states}  # each device once
        if not texts:
            return
        table = cast(Table, IntegrationState.__table__)
        dialect = self.engine.dialect
        stamp = _bound(table.c.updated_at.type, dialect, _now())
        try:
            with self.engine.begin() as conn:
                insert_rows(
                    conn.exec_driver_sql,
                    "INSERT INTO integration_state (device_id, state, updated_at)",
                    [(device, text, stamp) for device, text in texts.items()],
                    tail="ON CONFLICT (device_id) DO UPDATE "
                    "SET state = excluded.state, updated_at = excluded.updated_at",
                    mark=param_mark(dialect.paramstyle),
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


def _bound(type_: TypeEngine[Any], dialect: Dialect, value: object) -> object:
    """A value as SQLAlchemy hands it to the driver for a column of this type."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None else process(value)
