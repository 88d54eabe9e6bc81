"""The audit log: every shutdown command, outcome, override and missed job, append-only."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, Index, Integer, String, Table, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from gronkoll.statedb import Base, UtcDateTime

if TYPE_CHECKING:
    from gronkoll.statedb import StateDB

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; elsewhere 64 bits.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
FORMATS = ("table", "json")


class AuditRow(Base):
    """One line of the audit log (migration 0005)."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("audit_time", "t"),
        Index("audit_device", "device", "t"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    t: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    policy: Mapped[str | None] = mapped_column(String(100))
    device: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    command_id: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """What happened, when (aware UTC), who did it, to which device, and with what outcome.

    ``actor`` is ``scheduler``, ``cli`` or an API key's name; ``action`` says what was done
    (``shutdown``, ``wake``, ``verify``, ``override-add``, ``job-missed``, ...).
    """

    t: datetime
    actor: str
    action: str
    outcome: str
    policy: str | None = None
    device: str | None = None
    command_id: str | None = None
    reason: str | None = None
    detail: Mapping[str, Any] | None = None
    id: int | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (time in ISO 8601 UTC)."""
        return {
            "id": self.id,
            "t": self.t.isoformat(),
            "actor": self.actor,
            "policy": self.policy,
            "device": self.device,
            "action": self.action,
            "command_id": self.command_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": dict(self.detail) if self.detail is not None else None,
        }


def append(db: StateDB, records: Sequence[AuditRecord]) -> None:
    """Write records in one transaction, in the given order."""
    if not records:
        return
    for r in records:
        if r.t.tzinfo is None:
            raise ValueError(f"audit time {r.t!r} has no time zone")
    rows = [
        {
            "t": r.t,
            "actor": r.actor,
            "policy": r.policy,
            "device": r.device,
            "action": r.action,
            "command_id": r.command_id,
            "outcome": r.outcome,
            "reason": r.reason,
            "detail": None if r.detail is None else json.dumps(r.detail, sort_keys=True),
        }
        for r in records
    ]
    with db.transaction("cannot write the audit log") as conn:
        conn.execute(insert(cast(Table, AuditRow.__table__)), rows)


def query(
    db: StateDB,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    device: str | None = None,
    policy: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Records with start <= t < end, oldest first (the newest ``limit`` when one is given)."""
    q = select(AuditRow)
    if start is not None:
        q = q.where(AuditRow.t >= start)
    if end is not None:
        q = q.where(AuditRow.t < end)
    if device is not None:
        q = q.where(AuditRow.device == device)
    if policy is not None:
        q = q.where(AuditRow.policy == policy)
    if limit is not None:
        q = q.order_by(AuditRow.t.desc(), AuditRow.id.desc()).limit(limit)
    else:
        q = q.order_by(AuditRow.t, AuditRow.id)
    with db.session() as s:
        rows = list(s.scalars(q))
    records = [_record(r) for r in rows]
    return records[::-1] if limit is not None else records


def _record(r: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=r.id,
        t=r.t,
        actor=r.actor,
        policy=r.policy,
        device=r.device,
        action=r.action,
        command_id=r.command_id,
        outcome=r.outcome,
        reason=r.reason,
        detail=json.loads(r.detail) if r.detail else None,
    )


def render(records: Sequence[AuditRecord], fmt: str, tz: Any) -> str:
    """The records as a table (local times) or a JSON list (ISO 8601 with offset)."""
    if fmt == "json":
        items = []
        for r in records:
            item = r.as_dict()
            item["t"] = r.t.astimezone(tz).isoformat()
            items.append(item)
        return json.dumps(items, ensure_ascii=False, indent=2) + "\n"
    if not records:
        return "No audit records in that period.\n"
    header = ("time", "actor", "policy", "device", "action", "outcome", "reason", "command")
    rows = [
        (
            r.t.astimezone(tz).isoformat(timespec="seconds"),
            r.actor,
            r.policy or "-",
            r.device or "-",
            r.action,
            r.outcome,
            r.reason or "-",
            r.command_id or "-",
        )
        for r in records
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines) + "\n"
