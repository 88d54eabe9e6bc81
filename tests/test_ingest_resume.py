"""Integration state saved every few seconds: a crash between a store commit and a state save.

With ``save_every_s`` the Ingestor saves integration state at most that often, so a crash
usually lands after the store committed readings whose state was never saved. The process is
killed there (its memory is lost; the store and the state database keep what they committed),
a new one starts on the same files and takes the rest of the stream, beginning with the batch
it was not sure of (an MQTT broker resends what was not acknowledged). Whatever the kill point,
the stored readings, their flags and every device's energy must equal an uninterrupted run's:
counters with a glitch, a reset and a drop held across the kill, Tasmota-style energy amounts
with power they cover, power with a gap and a rejected value, PC states, and measurements.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from gronkoll.errors import StoreUnavailable
from gronkoll.ingest import Ingestor, Reading
from gronkoll.settings import Settings, load_settings
from gronkoll.statedb import StateDB
from gronkoll.stores import open_store
from gronkoll.stores.sqlite import SqliteStore

T0 = 1_738_569_600_000  # 2025-02-03T08:00:00Z
STEP = 300_000  # five minutes
STEPS = 14

CONFIG = """\
municipality: {name: Exempelby, timezone: Europe/Stockholm}
sites:
  - {id: skola1, name: Exempelskolan, kind: school}
devices:
  - {id: meter-1, site: skola1, kind: meter, rated_power_w: 20000}
  - {id: plug-1, site: skola1, kind: meter, rated_power_w: 3680}
  - {id: server-1, site: skola1, kind: server, rated_power_w: 1000}
  - {id: pc-1, site: skola1, kind: pc}
store: {kind: sqlite, path: data}
"""

#: meter-1's counter (Wh): a drop that comes back (glitch), a drop that lasts (reset), and a
#: drop followed by a lower one, then a reset; kill points fall inside each.
COUNTER = [1000, 1500, 2000, 400, 2600, 3000, 100, 300, 50, 20, 400, 900, 1500, 1700]
#: plug-1's energy since its previous report (Wh), as Tasmota's Period.
PERIOD = [3, 4, 5, 0, 6, 7, 5, 4, 3, 2, 8, 9, 1, 2]
#: server-1's power (W): None is a step without a reading (a gap), 5000 is rejected.
POWER: list[float | None] = [
    400,
    420,
    None,
    None,
    None,
    None,
    380,
    5000,
    390,
    400,
    410,
    0,
    405,
    400,
]
#: pc-1's states (codes: on, idle, sleep, off).
STATES = [0, 0, 1, 1, 2, 3, 3, 0, 1, 0, 2, 2, 0, 0]


def step(k: int) -> list[Reading]:
    """Every reading of step k, as one batch."""
    t = T0 + k * STEP
    out: list[Reading] = [
        ("meter-1", "energy_wh_total", t, float(COUNTER[k])),
        ("meter-1", "power_w", t, 5000.0 + k),
        ("meter-1", "voltage_v", t, 230.0 + k % 3),
        ("plug-1", "energy_wh", t, float(PERIOD[k])),
        ("plug-1", "power_w", t, 60.0 + k),
        ("pc-1", "state", t, float(STATES[k])),
    ]
    power = POWER[k]
    if power is not None:
        out.append(("server-1", "power_w", t, power))
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_settings(path)


Outcome = tuple[list[tuple[object, ...]], dict[str, float]]


def outcome(store: SqliteStore) -> Outcome:
    """Every stored reading (with its interval and flag), and the energy per device in Wh."""
    end = T0 + (STEPS + 1) * STEP
    rows = store.readings(0, end)
    energy: dict[str, float] = defaultdict(float)
    for _, device, wh in store.energy_by_hour("electricity", "device", 0, end):
        energy[device] += wh
    return sorted(rows, key=repr), {d: round(wh, 9) for d, wh in energy.items()}


def uninterrupted(settings: Settings, state: StateDB, resend: int | None = None) -> Outcome:
    """The outcome without a kill; resend: that step is sent twice, as after the kill."""
    store = open_store(settings)
    assert isinstance(store, SqliteStore)
    ingestor = Ingestor(settings, store, state)  # saves after every batch
    for k in range(STEPS):
        ingestor.ingest(step(k))
        if k == resend:
            ingestor.ingest(step(k))
    result = outcome(store)
    store.close()
    return result


def new_ingestor(settings: Settings, state: StateDB) -> tuple[SqliteStore, Ingestor]:
    """A collector's ingestion that saves state once an hour (the clock never gets there)."""
    store = open_store(settings)
    assert isinstance(store, SqliteStore)
    return store, Ingestor(settings, store, state, save_every_s=3600, clock=lambda: 0.0)


@pytest.mark.integration
@pytest.mark.parametrize("kill_after", range(STEPS - 1))
def test_a_kill_between_store_commit_and_state_save_changes_nothing(
    settings: Settings, state_db: StateDB, tmp_path: Path, kill_after: int
) -> None:
    reference = StateDB(f"sqlite:///{tmp_path}/reference.db")
    expected = uninterrupted(settings, reference, resend=kill_after)
    for path in settings.store_path.glob("timeseries.db*"):
        path.unlink()
    store, ingestor = new_ingestor(settings, state_db)
    for k in range(kill_after + 1):
        ingestor.ingest(step(k))
    # The store committed steps 0..kill_after; the state database holds state saved only
    # for what the store cannot rebuild (a held drop, a first energy source). From the second
    # step on, the store is ahead of the saved state: the kill lands where it matters.
    saved, newest = state_db.load_integration_states(), store.last_times()
    if kill_after > 0:
        for device, fld in (("pc-1", "state"), ("plug-1", "power_w")):
            series = saved.get(device, {}).get("series", {})
            assert fld not in series or series[fld][0] < newest[(device, fld)]
    store.close()  # killed: no flush(), nothing of the process's memory survives
    store, ingestor = new_ingestor(settings, state_db)
    for k in range(kill_after, STEPS):  # from the batch it was not sure of, sent again
        ingestor.ingest(step(k))
    got = outcome(store)
    store.close()
    assert got[1] == expected[1]  # energy per device
    assert got[0] == expected[0]  # every reading, its interval and flag
    assert expected[1]["meter-1"] > 0 and expected[1]["pc-1"] > 0


def test_a_refused_write_is_undone_in_the_engine_and_can_be_sent_again(
    settings: Settings, tmp_path: Path
) -> None:
    store, ingestor = new_ingestor(settings, StateDB(f"sqlite:///{tmp_path}/state.db"))
    for k in range(6):
        ingestor.ingest(step(k))
    original = store.write

    def refuse(*args: object) -> object:
        raise StoreUnavailable("disk full")

    store.write = refuse  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        ingestor.ingest(step(6))
    store.write = original  # type: ignore[method-assign]
    for k in range(6, STEPS):
        ingestor.ingest(step(k))
    got = outcome(store)
    store.close()
    for path in settings.store_path.glob("timeseries.db*"):
        path.unlink()
    assert got == uninterrupted(settings, StateDB(f"sqlite:///{tmp_path}/b.db"))


def test_state_is_saved_when_due_and_at_flush(settings: Settings, tmp_path: Path) -> None:
    state = StateDB(f"sqlite:///{tmp_path}/state.db")
    store = open_store(settings)
    now = [0.0]
    ingestor = Ingestor(settings, store, state, save_every_s=5, clock=lambda: now[0])
    ingestor.ingest(step(0))  # first readings of every source: saved at once
    assert state.load_integration_states()["server-1"]["series"]["power_w"][0] == T0
    ingestor.ingest(step(1))
    assert state.load_integration_states()["server-1"]["series"]["power_w"][0] == T0
    now[0] = 5.0
    ingestor.ingest(step(2))  # due: everything processed so far
    assert state.load_integration_states()["pc-1"]["series"]["state"][0] == T0 + 2 * STEP
    ingestor.ingest(step(3))
    ingestor.flush()
    assert state.load_integration_states()["pc-1"]["series"]["state"][0] == T0 + 3 * STEP
    store.close()
