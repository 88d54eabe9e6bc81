"""What makes a redelivered MQTT message count once: the keys of the messages taken, kept.

The broker resends a message it has no acknowledgement for when we connect again, flagged
DUP and with its packet id (MQTT 3.1.1 and 5, section 4.4). That happens after a crash, a lost
connection, or a batch the store refused. A payload with a time of its own gives the same
readings again, and the pipeline drops readings not newer than their series' newest. But a
payload without one (a Shelly number, a Zigbee2MQTT object) is read at its receive time, and
a resend received later would be a new reading: counted twice, or worse, an old counter value
at a new time, which looks like a reset.

So, before a batch is committed, each message's key and its receive time go into
``mqtt_seen`` in the state database, in a transaction of their own. A resend (DUP) whose key is
there is read again *as of that first receive time*: it gives exactly the readings (and
quarantine entries) of the first time, and the pipeline's commit stores each once whether the
first commit landed, failed, or was cut short by a crash. Written before the commit, a key is
never missing for a message that was stored; a key whose commit never landed does no harm.

The key is 64 bits of a hash of packet id, topic and payload. Only DUP messages are looked up,
and a broker can resend only what is unacknowledged, which holds a distinct 16-bit packet id:
so a session's newest 65,535 keys are enough, and older ones are deleted. They are kept per
session (client id and broker), so collectors sharing a state database keep their own. Rows
are only ever appended, without an index on the key (random keys in an index cost a write of
its pages per message); the collector keeps its session's keys in memory, loaded at start.
When the broker says it has no session for us, nothing can be resent and every key goes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gronkoll.errors import StoreError, StoreUnavailable
from gronkoll.multirow_insert import insert_rows, param_mark
from gronkoll.statedb import DeviceStatus, MqttSeen, StateDB

#: Keys kept per session: one per packet id a broker can have unacknowledged at once.
KEEP_KEYS = 65_535
#: Delete a session's old keys once this many were added since the last time.
PRUNE_EVERY = 8_192
_CHUNK = 500  # parameters per IN (...) query, under every database's limit


#: Keys go in through the driver in multi-row INSERTs (gronkoll/multirow_insert.py): SQLite
#: 3.40 takes them for under 0.7 us a row, an executemany of one row a statement for 1.8.
INSERT = "INSERT INTO mqtt_seen (session, key, received_ms)"


def message_key(mid: int, topic: str, payload: bytes) -> int:
    """The key of one delivered message: 64 bits of a hash of packet id, topic and payload."""
    digest = hashlib.blake2b(mid.to_bytes(2, "big"), digest_size=8)
    digest.update(topic.encode("utf-8", errors="surrogateescape"))
    digest.update(b"\0")
    digest.update(payload)
    return int.from_bytes(digest.digest(), "big", signed=True)


@dataclass(slots=True)
class Activity:
    """A device's MQTT messages since the last save: how many, quarantined, the newest."""

    messages: int = 0
    quarantined: int = 0
    last_ms: int = 0
    last_topic: str = ""


class DeliveryJournal:
    """One MQTT session's message keys (in the state database, mirrored in memory)."""

    def __init__(self, state: StateDB, session: str) -> None:
        self.state = state
        self.session = session
        self._seen = cast(Table, MqttSeen.__table__)
        self._mark = param_mark(state.engine.dialect.paramstyle)
        self._status = cast(Table, DeviceStatus.__table__)
        self._added = 0
        self._keys: OrderedDict[int, int] = OrderedDict()  # key -> first receive ms, oldest first
        self._load()

    def _load(self) -> None:
        seen = self._seen
        query = (
            select(seen.c.key, seen.c.received_ms)
            .where(seen.c.session == self.session)
            .order_by(seen.c.id.desc())
            .limit(KEEP_KEYS)
        )
        with _translated("read the MQTT redelivery journal"), self.state.engine.connect() as conn:
            rows = conn.execute(query).all()
        self._remember((int(key), int(received_ms)) for key, received_ms in reversed(rows))

    def _remember(self, keys: Iterable[tuple[int, int]]) -> None:
        """Keep (key, first receive ms) pairs in memory: the newest KEEP_KEYS, oldest first."""
        known = self._keys
        for key, received_ms in keys:
            if key in known:
                known.move_to_end(key)  # the newest of equal keys wins, and is the youngest
            known[key] = received_ms
        for _ in range(len(known) - KEEP_KEYS):  # dropped all at once: the same oldest go
            known.popitem(last=False)

    def lookup(self, keys: Iterable[int]) -> dict[int, int]:
        """The first receive time (ms) of each key that is there."""
        known = self._keys
        return {k: known[k] for k in keys if k in known}

    def record(self, keys: Sequence[tuple[int, int]]) -> None:
        """Keep (key, receive time ms) of messages about to be committed, in one transaction."""
        if not keys:
            return
        seen = self._seen
        session = self.session
        with _translated("write the MQTT redelivery journal"), self.state.engine.begin() as conn:
            # Through the driver: SQLAlchemy's per-row work cost 5 us a message.
            insert_rows(
                conn.exec_driver_sql,
                INSERT,
                [(session, k, ms) for k, ms in keys],
                mark=self._mark,
            )
            if self._added + len(keys) >= PRUNE_EVERY:
                oldest_kept = (
                    select(seen.c.id)
                    .where(seen.c.session == self.session)
                    .order_by(seen.c.id.desc())
                    .offset(KEEP_KEYS - 1)
                    .limit(1)
                    .scalar_subquery()
                )
                conn.execute(
                    delete(seen).where(seen.c.session == self.session, seen.c.id < oldest_kept)
                )
        self._added = (self._added + len(keys)) % PRUNE_EVERY
        self._remember(keys)

    def forget(self) -> None:
        """Delete every key: the broker has no session for us, so it resends nothing."""
        seen = self._seen
        with _translated("clear the MQTT redelivery journal"), self.state.engine.begin() as conn:
            conn.execute(delete(seen).where(seen.c.session == self.session))
        self._keys.clear()

    def keys(self) -> int:
        """How many keys the state database keeps for this session."""
        seen = self._seen
        query = select(func.count()).select_from(seen).where(seen.c.session == self.session)
        with _translated("read the MQTT redelivery journal"), self.state.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def save_activity(self, activity: Mapping[str, Activity]) -> None:
        """Add the devices' message counts and set their newest message, in one transaction."""
        if not activity:
            return
        table = self._status
        rows = [
            {
                "d": device,
                "m": a.messages,
                "q": a.quarantined,
                "at": datetime.fromtimestamp(a.last_ms / 1000, UTC),
                "topic": a.last_topic,
            }
            for device, a in activity.items()
        ]
        with _translated("save MQTT device activity"), self.state.engine.begin() as conn:
            existing: set[str] = set()
            ids = list(activity)
            for i in range(0, len(ids), _CHUNK):
                query = select(table.c.device_id).where(table.c.device_id.in_(ids[i : i + _CHUNK]))
                existing.update(conn.scalars(query))
            changed = [r for r in rows if r["d"] in existing]
            if changed:
                conn.execute(
                    update(table)
                    .where(table.c.device_id == bindparam("d"))
                    .values(
                        mqtt_messages=func.coalesce(table.c.mqtt_messages, 0) + bindparam("m"),
                        mqtt_quarantined=func.coalesce(table.c.mqtt_quarantined, 0)
                        + bindparam("q"),
                        mqtt_last_message_at=bindparam("at"),
                        mqtt_last_topic=bindparam("topic"),
                    ),
                    changed,
                )
            new = [
                {
                    "device_id": r["d"],
                    "consecutive_failures": 0,
                    "mqtt_messages": r["m"],
                    "mqtt_quarantined": r["q"],
                    "mqtt_last_message_at": r["at"],
                    "mqtt_last_topic": r["topic"],
                }
                for r in rows
                if r["d"] not in existing
            ]
            if new:
                conn.execute(insert(table), new)


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Database errors as Gronkoll's own, saying what was being done."""
    try:
        yield
    except OperationalError as err:
        raise StoreUnavailable(f"state database: cannot {doing}: {err.orig}") from None
    except SQLAlchemyError as err:
        raise StoreError(f"state database: cannot {doing}: {err}") from None
