"""Simulated APC rack PDUs for the SNMP benchmark: snmpsim processes, one community per agent.

Every agent is a ``.snmprec`` recording named ``pduNNNN`` (its community), answering like an
APC Rack PDU 2G (the rows below are those of tests/fixtures/snmprec/apc_ap8853.snmprec that
the apc-rpdu2 profile reads, with a power that differs per agent). snmpsim is started the
way the test suite starts it (tests/servers.py: from .venv-sim, as ``nobody`` when we are
root, on 127.0.0.1 and a free UDP port) and stopped by its PID. ``start_agents`` starts one
process for all agents (what issue 3 asks for); ``start_agent_groups`` splits the agents over
several processes, each on its own port, so that the simulator is less of a limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402  (tests/servers.py: the project's one way to start snmpsim)

__all__ = [
    "OIDS",
    "Agent",
    "Snmpsim",
    "agents_of",
    "community",
    "start_agent_groups",
    "start_agents",
    "write_recordings",
]

Snmpsim = servers.Snmpsim
#: One simulated agent as a client addresses it: (UDP port, community).
Agent = tuple[int, str]

RPDU2 = "1.3.6.1.4.1.318.1.1.26"
POWER = f"{RPDU2}.4.3.1.5.1"  # rPDU2DeviceStatusPower, hundredths of kW
ENERGY = f"{RPDU2}.4.3.1.9.1"  # rPDU2DeviceStatusEnergy, tenths of kWh
APPARENT = f"{RPDU2}.4.3.1.16.1"  # rPDU2DeviceStatusApparentPower, hundredths of kVA
CURRENT = f"{RPDU2}.6.3.1.5.1"  # rPDU2PhaseStatusCurrent, tenths of A
VOLTAGE = f"{RPDU2}.6.3.1.6.1"  # rPDU2PhaseStatusVoltage, V

#: The five objects every client reads from every agent (row 1 of each column).
OIDS = (POWER, ENERGY, APPARENT, CURRENT, VOLTAGE)


def community(index: int) -> str:
    """The community, and recording name, of agent number index."""
    return f"pdu{index:04d}"


def recording(index: int) -> str:
    """The .snmprec text of one PDU: the system group and rows 1 of rPDU2's status tables."""
    power = 50 + (index * 37) % 200  # 0.5 to 2.49 kW
    rows = {
        "1.3.6.1.2.1.1.1.0": (4, f"APC Web/SNMP Management Card (MN:AP8853) bench agent {index}"),
        "1.3.6.1.2.1.1.2.0": (6, "1.3.6.1.4.1.318.1.3.4.6"),
        "1.3.6.1.2.1.1.3.0": (67, str(1_000_000 + index)),
        "1.3.6.1.2.1.1.5.0": (4, f"pdu-{index:04d}"),
        f"{RPDU2}.4.3.1.1.1": (2, "1"),
        POWER: (2, str(power)),
        f"{RPDU2}.4.3.1.6.1": (2, str(power + 30)),  # peak power, not read
        ENERGY: (2, str(30_000 + index * 13)),
        APPARENT: (2, str(power + 5)),
        f"{RPDU2}.6.3.1.1.1": (2, "1"),
        CURRENT: (2, str(round(power * 100 / 230))),
        VOLTAGE: (2, "230"),
    }
    ordered = sorted(rows.items(), key=lambda row: tuple(int(p) for p in row[0].split(".")))
    return "".join(f"{oid}|{tag}|{value}\n" for oid, (tag, value) in ordered)


def write_recordings(folder: Path, indexes: range) -> Path:
    """Write one recording per agent index into folder and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in indexes:
        (folder / f"{community(index)}.snmprec").write_text(recording(index))
    return folder


def start_agents(folder: Path, agents: int) -> servers.Snmpsim:
    """Start one snmpsim serving agents PDUs; it answers every community when this returns."""
    (sim,) = start_agent_groups(folder, agents, 1)
    return sim


def start_agent_groups(folder: Path, agents: int, processes: int) -> list[servers.Snmpsim]:
    """Start processes snmpsims, agent i served by number i % processes, each on its own
    port; every one answers all its communities when this returns. Stop them all on error."""
    sims: list[servers.Snmpsim] = []
    try:
        for number in range(processes):
            suffix = "" if processes == 1 else f"-{number}"
            recordings = write_recordings(
                folder / f"recordings{suffix}", range(number, agents, processes)
            )
            sim_dir = folder / f"snmpsim{suffix}"
            sim_dir.mkdir()
            sims.append(servers.start_snmpsim(sim_dir, recordings=recordings))
    except BaseException:
        for sim in sims:
            sim.stop()
        raise
    return sims


def agents_of(sims: list[servers.Snmpsim]) -> list[Agent]:
    """Every agent the simulators serve, in agent order: (port, community)."""
    found = [(sim.port, name) for sim in sims for name in sim.communities]
    return sorted(found, key=lambda agent: agent[1])
