"""The message pipeline: handle() without I/O, commit() that stores a batch or raises.

Commit failures are real: the state database's quarantine table is renamed away under the
pipeline, so the batch cannot be stored; the caller then would not acknowledge it, and
sending the same batch again once the database is back stores everything exactly once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gronkoll.collector.messages import Message, MessagePipeline
from gronkoll.errors import StoreError
from gronkoll.runtime import Runtime
from gronkoll.settings import Settings, parse_settings

T0 = 1738573200000  # 2025-02-03T09:00:00Z


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(
        {
            "municipality": {"name": "Exempelby"},
            "sites": [{"id": "skola1"}],
            "devices": [
                {"id": "plug-1", "site": "skola1", "kind": "meter", "rated_power_w": 2500},
                {"id": "rum-1", "site": "skola1", "kind": "meeting_room"},
            ],
            "mqtt": {
                "subscriptions": [
                    {"topic": "shellies/+/relay/0/+", "format": "shelly-gen1", "device_level": 1},
                    {"topic": "gronkoll/meetings", "format": "gronkoll-meeting"},
                ]
            },
            "store": {"path": str(tmp_path / "data")},
        },
        tmp_path / "gronkoll.yaml",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with Runtime(settings) as rt:
        yield rt


def energy(n: int, wmin: int) -> Message:
    return Message("shellies/plug-1/relay/0/energy", str(wmin).encode(), T0 + n * 300_000)


MEETING = (
    b'{"v": 1, "event": "started", "meeting_id": "m-1", "room": "rum-1",'
    b' "t": "2025-02-03T10:00:00+01:00", "participants": {"skola1": 4}}'
)


def test_handle_reads_quarantines_and_ignores_without_io(settings: Settings) -> None:
    pipeline = MessagePipeline(settings)
    good = pipeline.handle(energy(0, 600))
    assert good.device == "plug-1" and good.readings == [("plug-1", "energy_wh_total", T0, 10.0)]
    bad = pipeline.handle(Message("shellies/plug-1/relay/0/power", b"-4", T0))
    assert [q.reason for q in bad.quarantine] == ["relay/0/power: -4 W: power_w cannot be negative"]
    stranger = pipeline.handle(Message("shellies/plug-9/relay/0/power", b"4", T0))
    assert [(q.device_id, q.reason) for q in stranger.quarantine] == [
        ("plug-9", "device 'plug-9' is not configured")
    ]
    relay = pipeline.handle(Message("shellies/plug-1/relay/0/x", b"on", T0))
    assert relay.ignored and not relay.quarantine
    counts = pipeline.counts.per_device
    assert (counts["plug-1"].messages, counts["plug-1"].quarantined) == (2, 1)
    assert counts["plug-9"].quarantined == 1
    assert counts["plug-1"].last_message_ms == T0


def test_an_unknown_topic_is_counted_and_logged_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = MessagePipeline(settings)
    with caplog.at_level(logging.WARNING, logger="gronkoll.collector.messages"):
        for _ in range(3):
            handled = pipeline.handle(Message("okand/x", b"1", T0))
            assert handled.device is None and handled.ignored and not handled.quarantine
    assert pipeline.counts.unrouted == 3
    assert [r.getMessage() for r in caplog.records] == [
        "no device topic or subscription covers 'okand/x': ignored (further messages on it are "
        "counted, not logged)"
    ]


def test_a_fleet_wide_problem_is_logged_once_and_counted_per_device(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = MessagePipeline(settings)
    with caplog.at_level(logging.WARNING, logger="gronkoll.collector.messages"):
        for n, device in enumerate(["plug-1", "plug-7", "plug-8", "plug-1"]):
            pipeline.handle(Message(f"shellies/{device}/relay/0/power", f"-{n + 1}".encode(), T0))
    assert [r.getMessage() for r in caplog.records] == [
        "plug-1: quarantined a message on shellies/plug-1/relay/0/power "
        "(mqtt.subscriptions[0]): relay/0/power: -1 W: power_w cannot be negative (further "
        "messages with this problem are counted, not logged; see `gronkoll quarantine list`)",
        "plug-7: quarantined a message on shellies/plug-7/relay/0/power "
        "(mqtt.subscriptions[0]): device 'plug-7' is not configured (further messages with "
        "this problem are counted, not logged; see `gronkoll quarantine list`)",
    ]
    counts = pipeline.counts.per_device
    assert {d: c.quarantined for d, c in counts.items()} == {"plug-1": 2, "plug-7": 1, "plug-8": 1}


def test_commit_stores_readings_quarantine_and_meetings(
    settings: Settings, runtime: Runtime
) -> None:
    pipeline = MessagePipeline(settings)
    handled = [pipeline.handle(m) for m in (energy(0, 600), energy(1, 1200))]
    handled.append(pipeline.handle(Message("gronkoll/meetings", MEETING, T0 + 1)))
    handled.append(pipeline.handle(Message("shellies/plug-1/relay/0/power", b"x", T0 + 2)))
    result = pipeline.commit(runtime, handled)
    assert (result.messages, result.stored, result.quarantined, result.meetings) == (4, 3, 1, 1)
    assert result.energy_wh == pytest.approx(10.0)
    assert [m.meeting_id for m in runtime.state.meetings()] == ["m-1"]
    assert runtime.state.quarantine_counts() == {"plug-1": 1}


def test_a_batch_the_state_db_refuses_raises_and_is_stored_once_when_sent_again(
    settings: Settings, runtime: Runtime
) -> None:
    pipeline = MessagePipeline(settings)
    first = [pipeline.handle(energy(0, 600))]
    pipeline.commit(runtime, first)
    batch = [
        pipeline.handle(energy(1, 1200)),
        pipeline.handle(Message("shellies/plug-1/relay/0/power", b"n/a", T0 + 300_000)),
    ]
    db = str(settings.store_path / "state.db")
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE mqtt_quarantine RENAME TO away")
    with pytest.raises(StoreError, match="no such table: mqtt_quarantine"):
        pipeline.commit(runtime, batch)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE away RENAME TO mqtt_quarantine")
    # the broker sends the unacknowledged batch again
    again = pipeline.commit(runtime, batch)
    assert (again.stored, again.repeats, again.quarantined) == (0, 1, 1)
    assert runtime.state.quarantine_counts() == {"plug-1": 1}
    hours = runtime.store.energy_by_hour("electricity", "device", T0 - 3_600_000, T0 + 7_200_000)
    assert sum(wh for _, _, wh in hours) == pytest.approx(10.0)  # stored once


def test_an_unconfigured_name_with_a_slash_says_how_to_map_it(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "municipality": {"name": "Exempelby"},
            "sites": [{"id": "skola1"}],
            "mqtt": {"subscriptions": [{"topic": "zigbee2mqtt/#", "format": "zigbee2mqtt"}]},
        },
        tmp_path / "gronkoll.yaml",
    )
    handled = MessagePipeline(settings).handle(
        Message("zigbee2mqtt/kontor/skrivare-2", b'{"power": 9}', T0)
    )
    assert [q.reason for q in handled.quarantine] == [
        "device 'kontor/skrivare-2' is not configured (a name with a slash needs the "
        "device's own mqtt.topic)"
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database on SQLite and on the test session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    import uuid

    import servers
    from sqlalchemy import create_engine, text

    pg: servers.PostgreSQL = request.getfixturevalue("postgresql")
    name = "gk_" + uuid.uuid4().hex[:12]
    admin = create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return pg.url.rsplit("/", 1)[0] + "/" + name


def test_quarantine_and_meetings_are_idempotent_on_every_state_database(state_url: str) -> None:
    from gronkoll.statedb import MeetingEvent, QuarantineEntry, StateDB

    db = StateDB(state_url)
    try:
        entries = [
            QuarantineEntry(
                t_ms=T0 + i, topic="t/x", device_id="plug-1", payload="x", payload_bytes=1,
                reason=f"reason {i}",
            )
            for i in range(3)
        ]  # fmt: skip
        start = MeetingEvent(
            room="rum-1", meeting_id="m-1", event="started", t_ms=T0, participants={"skola1": 4}
        )
        end = MeetingEvent(
            room="rum-1",
            meeting_id="m-1",
            event="ended",
            t_ms=T0 + 3_600_000,
            participants={"skola1": 3, "kommunhuset": 1},
        )
        orphan = MeetingEvent(
            room="rum-1", meeting_id="m-2", event="ended", t_ms=T0, participants={}
        )
        assert db.record_mqtt(entries, [end, orphan]) == (3, 2)
        assert db.record_mqtt(entries, [start, end, orphan]) == (0, 3)  # sent again
        assert [q.reason for q in db.quarantined(limit=2)] == ["reason 2", "reason 1"]
        assert db.quarantine_counts() == {"plug-1": 3}
        meetings = {m.meeting_id: m for m in db.meetings("rum-1")}
        first = meetings["m-1"]
        assert first.started_at is not None and first.ended_at is not None
        assert round(first.started_at.timestamp() * 1000) == T0
        assert round(first.ended_at.timestamp() * 1000) == T0 + 3_600_000
        assert first.participants_by_site == {"skola1": 4, "kommunhuset": 1}
        assert meetings["m-2"].started_at is None
    finally:
        db.close()
