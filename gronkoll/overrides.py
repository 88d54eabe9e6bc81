"""Temporary overrides: a device or a group left on by scheduled shutdowns in a time window.

An override names one device or one group, a window [from, to), a reason and who asked for
it. Scheduled shutdowns skip every computer an override covers while it is active. Adding
and removing one is written to the audit log, with the actor (``cli`` or an API key's name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gronkoll.errors import InputError, UnknownDevice
from gronkoll.statedb import Base, UtcDateTime

if TYPE_CHECKING:
    from gronkoll.settings import Settings
    from gronkoll.statedb import StateDB


class OverrideRow(Base):
    """One override (migration 0006)."""

    __tablename__ = "overrides"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str | None] = mapped_column(String(64))
    group_id: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """An override as the CLI and the API show it; times are aware UTC."""

    id: int
    device: str | None
    group: str | None
    start: datetime
    end: datetime
    reason: str
    who: str
    created_at: datetime
    created_by: str

    @property
    def target(self) -> str:
        """'device X' or 'group G'."""
        return f"device {self.device}" if self.device else f"group {self.group}"

    def active(self, at: datetime) -> bool:
        """Whether the override holds at this instant."""
        return self.start <= at < self.end

    def as_json(self) -> dict[str, Any]:
        """The API's and `override list --format json`'s object (ISO 8601 times, UTC)."""
        return {
            "id": self.id,
            "device": self.device,
            "group": self.group,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "reason": self.reason,
            "who": self.who,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def _override(row: OverrideRow) -> Override:
    return Override(
        id=row.id,
        device=row.device,
        group=row.group_id,
        start=row.starts_at,
        end=row.ends_at,
        reason=row.reason,
        who=row.who,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _check_target(settings: Settings, device: str | None, group: str | None) -> None:
    if (device is None) == (group is None):
        raise InputError("an override names exactly one of a device and a group")
    if device is not None and settings.device(device) is None:
        raise UnknownDevice(f"unknown device {device!r}")
    if group is not None and group not in {g.id for g in settings.groups}:
        known = ", ".join(g.id for g in settings.groups) or "none configured"
        raise InputError(f"unknown group {group!r} (known: {known})")


def add_override(
    db: StateDB,
    settings: Settings,
    *,
    device: str | None = None,
    group: str | None = None,
    start: datetime,
    end: datetime,
    reason: str,
    who: str,
    actor: str,
    now: datetime,
) -> Override:
    """Store an override and audit it; InputError when it names nothing known or no window."""
    _check_target(settings, device, group)
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("override times need a time zone")
    if end <= start:
        raise InputError(f"the override ends ({end.isoformat()}) before it starts")
    if end <= now:
        raise InputError(f"the override ends ({end.isoformat()}) in the past")
    if not reason.strip() or not who.strip():
        raise InputError("an override needs a reason and who asked for it")
    row = OverrideRow(
        device=device,
        group_id=group,
        starts_at=start,
        ends_at=end,
        reason=reason.strip(),
        who=who.strip(),
        created_at=now,
        created_by=actor,
    )
    with db.session() as s, s.begin():
        s.add(row)
        s.flush()
        added = _override(row)
        _audit(s, added, "override-add", actor, now)
    return added


def remove_override(db: StateDB, override_id: int, *, actor: str, now: datetime) -> Override:
    """Delete an override and audit it; InputError when there is none with this id."""
    with db.session() as s, s.begin():
        row = s.get(OverrideRow, override_id)
        if row is None:
            raise InputError(f"no override with id {override_id}")
        removed = _override(row)
        s.execute(delete(OverrideRow).where(OverrideRow.id == override_id))
        _audit(s, removed, "override-remove", actor, now)
    return removed


def list_overrides(db: StateDB, *, now: datetime | None = None) -> list[Override]:
    """Overrides by start time; with now, only those not yet ended."""
    query = select(OverrideRow).order_by(OverrideRow.starts_at, OverrideRow.id)
    if now is not None:
        query = query.where(OverrideRow.ends_at > now)
    with db.session() as s:
        return [_override(r) for r in s.scalars(query)]


def exemptions(db: StateDB, settings: Settings, at: datetime) -> dict[str, str]:
    """Device id -> why it is exempt from shutdowns at this instant, from active overrides."""
    query = select(OverrideRow).where(OverrideRow.starts_at <= at, OverrideRow.ends_at > at)
    with db.session() as s:
        active = [_override(r) for r in s.scalars(query.order_by(OverrideRow.id))]
    found: dict[str, str] = {}
    for o in active:
        why = f"override {o.id} ({o.target}, until {o.end.isoformat()}): {o.reason} ({o.who})"
        if o.device is not None:
            found.setdefault(o.device, why)
            continue
        for d in settings.devices:
            if d.group == o.group:
                found.setdefault(d.id, why)
    return found


def _audit(s: Session, o: Override, action: str, actor: str, now: datetime) -> None:
    """The audit line, in the same transaction as the change it records."""
    from gronkoll.audit import AuditRow

    detail = {k: v for k, v in o.as_json().items() if k not in ("reason",)}
    s.add(
        AuditRow(
            t=now,
            actor=actor,
            policy=None,
            device=o.device,
            action=action,
            command_id=None,
            outcome="ok",
            reason=o.reason,
            detail=_json(detail),
        )
    )


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, sort_keys=True, separators=(",", ":"))
