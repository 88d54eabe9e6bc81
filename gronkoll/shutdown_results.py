"""Each machine's result of a shutdown run, and the interval it stayed off (migration 0005).

A shutdown run is one policy firing or one ``gronkoll shutdown now``. Its rows say, per
targeted machine, whether it went off (``off``), was already off (``already-off``), or not
(``non-compliant`` with a reason); in audit-only mode, whether it was ``on`` or ``off`` at the
planned time (``unknown`` when nothing says). A machine that went off has an off interval:
from the verified off time to the first time it is seen on again (``on_at``), capped at the
next weekday morning (``until_at``); the savings report turns those intervals into kWh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from gronkoll.statedb import Base, UtcDateTime

if TYPE_CHECKING:
    from gronkoll.statedb import StateDB

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

OUTCOMES = ("off", "already-off", "non-compliant", "on", "unknown")
REASONS = ("user-active", "exempt", "no-agent", "did-not-go-off")


class ShutdownResultRow(Base):
    """One machine in one shutdown run."""

    __tablename__ = "shutdown_results"
    __table_args__ = (
        UniqueConstraint("run_id", "device", name="shutdown_results_run_device"),
        Index("shutdown_results_night", "night"),
    )
    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str | None] = mapped_column(String(100))
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    night: Mapped[date] = mapped_column(Date)
    device: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str | None] = mapped_column(String(64))
    audit_only: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(32))
    off_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    on_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    until_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    idle_w: Mapped[float | None] = mapped_column(Float)
    off_w: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownResult:
    """One machine's result of a shutdown run, with its off interval when it went off."""

    run_id: str
    policy: str | None
    planned_at: datetime
    night: date
    device: str
    site: str
    group: str | None
    audit_only: bool
    outcome: str
    reason: str | None = None
    off_at: datetime | None = None
    on_at: datetime | None = None
    until_at: datetime | None = None
    idle_w: float | None = None
    off_w: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def hours_off(self) -> float:
        """Hours from the verified off time until seen on again or the cap, 0 when not off."""
        if self.outcome != "off" or self.off_at is None or self.until_at is None:
            return 0.0
        end = min(self.on_at, self.until_at) if self.on_at is not None else self.until_at
        return max(0.0, (end - self.off_at).total_seconds() / 3600)


def save(db: StateDB, results: Sequence[ShutdownResult]) -> None:
    """Insert results in one transaction."""
    if not results:
        return
    rows = [
        {
            "run_id": r.run_id,
            "policy": r.policy,
            "planned_at": r.planned_at,
            "night": r.night,
            "device": r.device,
            "site": r.site,
            "group_id": r.group,
            "audit_only": r.audit_only,
            "outcome": r.outcome,
            "reason": r.reason,
            "off_at": r.off_at,
            "on_at": r.on_at,
            "until_at": r.until_at,
            "idle_w": r.idle_w,
            "off_w": r.off_w,
            "evidence": json.dumps(r.evidence, sort_keys=True) if r.evidence else None,
        }
        for r in results
    ]
    with db.transaction("cannot save shutdown results") as conn:
        conn.execute(insert(cast(Table, ShutdownResultRow.__table__)), rows)


def load(
    db: StateDB, *, first: date | None = None, end: date | None = None, open_only: bool = False
) -> list[ShutdownResult]:
    """Results of the nights first <= night < end (all when not given), oldest first.

    open_only: only machines that went off and have not been seen on again.
    """
    q = select(ShutdownResultRow)
    if first is not None:
        q = q.where(ShutdownResultRow.night >= first)
    if end is not None:
        q = q.where(ShutdownResultRow.night < end)
    if open_only:
        q = q.where(ShutdownResultRow.outcome == "off", ShutdownResultRow.on_at.is_(None))
    q = q.order_by(ShutdownResultRow.planned_at, ShutdownResultRow.id)
    with db.session() as s:
        return [_result(r) for r in s.scalars(q)]


def baseline_counts(db: StateDB) -> tuple[int, int]:
    """Machines found on, and found on or off, by audit-only runs before the first enforced
    run (all audit-only runs when none was enforced yet)."""
    row = ShutdownResultRow
    first = select(func.min(row.planned_at)).where(row.audit_only.is_(False)).scalar_subquery()
    q = (
        select(row.outcome, func.count())
        .where(row.audit_only.is_(True), row.outcome.in_(("on", "off")))
        .where(or_(first.is_(None), row.planned_at < first))
        .group_by(row.outcome)
    )
    with db.session() as s:
        counts = {str(outcome): int(n) for outcome, n in s.execute(q)}
    return counts.get("on", 0), counts.get("on", 0) + counts.get("off", 0)


def mark_seen_on(db: StateDB, seen: Mapping[tuple[str, str], datetime]) -> None:
    """Close off intervals: (run id, device) -> when the machine was first seen on again."""
    if not seen:
        return
    table = cast(Table, ShutdownResultRow.__table__)
    rows = [{"r": run, "d": device, "on": t} for (run, device), t in seen.items()]
    with db.transaction("cannot save when machines came on again") as conn:
        conn.execute(
            update(table)
            .where(table.c.run_id == bindparam("r"), table.c.device == bindparam("d"))
            .values(on_at=bindparam("on")),
            rows,
        )


def _result(r: ShutdownResultRow) -> ShutdownResult:
    return ShutdownResult(
        run_id=r.run_id,
        policy=r.policy,
        planned_at=r.planned_at,
        night=r.night,
        device=r.device,
        site=r.site,
        group=r.group_id,
        audit_only=bool(r.audit_only),
        outcome=r.outcome,
        reason=r.reason,
        off_at=r.off_at,
        on_at=r.on_at,
        until_at=r.until_at,
        idle_w=r.idle_w,
        off_w=r.off_w,
        evidence=json.loads(r.evidence) if r.evidence else {},
    )
