"""Line protocol for Gronkoll's InfluxDB schema, and the spool's queue and hour totals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gronkoll.energy import OK, REJECTED, Batch
from gronkoll.stores.base import Attribution
from gronkoll.stores.lineprotocol import LineEncoder, escape_key, string_field
from gronkoll.stores.spool import Spool

H = 3_600_000
T = 1_774_738_800_000  # 2026-03-28T23:00:00Z, an hour start
ATTR = {
    "pc 1": Attribution(site="skola,1", group="elev=datorer", kind="pc"),
    "sub-1": Attribution(site=None, group="ungrouped", kind="server"),
}
SITES = {"pc 1": "skola,1", "sub-1": "serverrum"}
NAMES = {1: ("pc 1", "power_w"), 2: ("pc 1", "state"), 3: ("sub-1", "power_w")}


def encoder() -> LineEncoder:
    return LineEncoder(NAMES.__getitem__, SITES)


def test_keys_and_strings_are_escaped_per_the_line_protocol_reference() -> None:
    assert escape_key("a b,c=d") == r"a\ b\,c\=d"
    assert string_field('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'


def test_a_batch_becomes_reading_rejected_energy_and_event_points() -> None:
    batch = Batch(
        rows=[
            (1, T, 42.5, None, None, OK),
            (2, T, 1.0, None, None, OK),
            (3, T + 60_000, 99_999.0, None, None, REJECTED),
        ],
        events=[("sub-1", T + 60_000, "rejected", 'power_w=99999 outside "0..1100" W')],
    )
    batch.add_hour("electricity", "pc 1", T // H, 10.0)
    batch.add_hour("electricity", "sub-1", T // H, 5.0)
    totals = {("electricity", "pc 1", T // H): 110.0, ("electricity", "sub-1", T // H): 5.0}

    encoded = encoder().encode(batch, ATTR, totals)

    lines = encoded.body.decode().split("\n")
    assert lines == [
        rf"reading,device=pc\ 1,group=elev\=datorer,kind=pc,site=skola\,1 power_w=42.5,state=1.0 {T}",
        f"rejected,device=sub-1,group=ungrouped,kind=server,site=serverrum power_w=99999.0,"
        rf'reason="power_w=99999 outside \"0..1100\" W" {T + 60_000}',
        # the cumulative total of the hour, at the hour's start
        rf"energy,device=pc\ 1,group=elev\=datorer,kind=pc,quantity=electricity,site=skola\,1 "
        f"wh=110.0 {T}",
        # a sub-metered device's energy carries no site: its meter already counts it there
        f"energy,device=sub-1,group=ungrouped,kind=server,quantity=electricity wh=5.0 {T}",
        rf'event,device=sub-1,kind=rejected detail="power_w=99999 outside \"0..1100\" W" {T + 60_000}',
    ]
    assert (encoded.points, encoded.readings) == (5, 3)


def test_non_finite_values_are_left_out() -> None:
    batch = Batch(rows=[(1, T, float("nan"), None, None, OK), (1, T + 1, 3.0, None, None, OK)])
    encoded = encoder().encode(batch, ATTR, {})
    assert encoded.body.decode().endswith(f"power_w=3.0 {T + 1}")
    assert encoded.readings == 1


def queue(spool: Spool, hourly: dict[tuple[str, str], dict[int, float]], body: bytes) -> None:
    from gronkoll.stores.lineprotocol import Encoded

    spool.append(hourly, {}, lambda totals: Encoded(body + repr(totals).encode(), 1, 10))


def test_hour_totals_run_on_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=10**6)
    queue(spool, {("electricity", "pc"): {5: 1.5}}, b"a")
    spool.close()
    spool = Spool(path, max_bytes=10**6)
    queue(spool, {("electricity", "pc"): {5: 2.0, 6: 1.0}}, b"b")
    bodies = [e.body for e in spool.take(100)]
    assert bodies == [
        b"a{('electricity', 'pc', 5): 1.5}",
        b"b{('electricity', 'pc', 5): 3.5, ('electricity', 'pc', 6): 1.0}",
    ]


def test_a_failed_batch_adds_nothing_to_the_totals(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)

    def broken(totals: object) -> object:
        raise ValueError("encoder bug")

    with pytest.raises(ValueError, match="encoder bug"):
        spool.append({("electricity", "pc"): {5: 100.0}}, {}, broken)  # type: ignore[arg-type]
    queue(spool, {("electricity", "pc"): {5: 1.0}}, b"a")
    assert spool.take(100)[0].body == b"a{('electricity', 'pc', 5): 1.0}"
    assert spool.entries == 1


def test_entries_go_out_oldest_first_and_are_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)
    for name in (b"1", b"2", b"3"):
        queue(spool, {}, name)
    first = spool.take(2)
    assert [e.body for e in first] == [b"1{}", b"2{}"]
    spool.sent(first)
    spool.failed("InfluxDB at x is unreachable (connection refused)")
    status = spool.status()
    assert [e.body for e in spool.take(2)] == [b"3{}"]
    assert status.entries == 1
    assert status.counters["sent_readings"] == 20
    assert status.counters["queued_readings"] == 30
    assert status.counters["send_failures"] == 1
    assert status.last_error is not None and "connection refused" in status.last_error


def test_a_full_spool_evicts_its_oldest_entries_counts_and_logs_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1000)
    with caplog.at_level(logging.ERROR, logger="gronkoll.stores.spool"):
        for i in range(5):
            queue(spool, {}, str(i).encode() * 300)
    status = spool.status()
    assert [e.body[:1] for e in spool.take(10**6)] == [b"2", b"3", b"4"]
    assert status.size_bytes <= 1000
    assert status.counters["dropped_entries"] == 2
    assert status.counters["dropped_readings"] == 20
    assert "is full" in caplog.text  # once, not per eviction
    assert caplog.text.count("is full") == 1
