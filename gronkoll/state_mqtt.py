"""The state database's MQTT tables: quarantined messages, meetings, messages seen."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from gronkoll.state_base import Base, StateConnection, UtcDateTime, _now


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


class MqttRecordStore(StateConnection):
    """Keeping quarantined MQTT messages and meetings, and reading them back."""

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


# -- writing quarantine entries and meetings, idempotently ---------------------------
def _record_mqtt(
    db: StateConnection, entries: Sequence[QuarantineEntry], meetings: Sequence[MeetingEvent]
) -> tuple[int, int]:
    """Store quarantine entries and meeting events in one transaction.

    Both are idempotent, so a batch sent again (a redelivery, a replay) changes nothing:
    an entry already kept (same fingerprint) is skipped; a meeting keeps its earliest start,
    its latest end and, per site, the most participants any of its events reported.
    Returns (entries newly kept, meetings written).
    """
    if not entries and not meetings:
        return 0, 0
    with db.transaction("cannot store MQTT quarantine or meetings") as conn:
        kept = _insert_quarantine(conn, entries) if entries else 0
        for m in sorted(meetings, key=lambda m: m.t_ms):
            _merge_meeting(conn, m)
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
