"""What Gronkoll's poller is measured against: the same agents read by other clients.

* bare pysnmp: one asyncio loop, at most ``concurrency`` agents at a time, one GET of the five
  OIDs per agent, through either of pysnmp's stacks: the full engine (``v3arch``: one shared
  SnmpEngine, every community registered before the first request) or the light v1/v2c
  dispatcher (``v1arch``: one SnmpDispatcher; Gronkoll used it for v1 and v2c before it had
  its own codec, collector/snmp_ber.py); or, with
  ``walk=True`` (v3arch), five GETBULK walks of the apc-rpdu2 columns (max-repetitions 25);
* net-snmp's ``snmpget`` (C), one process per agent with the five OIDs, ``xargs -P``;
* Prometheus' snmp_exporter 0.21 (Debian's prometheus-snmp-exporter), one module per
  community (0.21 keeps auth inside each module), scraped over HTTP ``parallel`` at a time.

Agents are (port, community) pairs, so the simulated agents may be spread over several
snmpsim processes. Each function runs warm-up rounds and then timed rounds of every agent,
and returns a Rounds:
seconds per round, agents that answered, and the CPU the client used (the bench process for
bare pysnmp, snmpget and its xargs, the snmp_exporter process; not our HTTP scraper).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pysnmp.hlapi.v1arch import asyncio as v1arch
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto.rfc1902 import Null, ObjectName
from snmp_agents import OIDS, Agent, servers

HOST = servers.HOST
EXPORTER = "prometheus-snmp-exporter"
TIMEOUT_S = 2  # the collector's default timeout_s and retries, for every client
RETRIES = 1


@dataclass
class Rounds:
    """Per round of all agents: seconds, agents that answered, the client's CPU seconds."""

    warmup_s: list[float] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # timed rounds only
    cpu_s: list[float] = field(default_factory=list)  # timed rounds only

    def record(self, warmup: bool, elapsed_s: float, answered: int, cpu_s: float) -> None:
        """Note one round, a warm-up or a timed one."""
        if warmup:
            self.warmup_s.append(elapsed_s)
            return
        self.round_s.append(elapsed_s)
        self.answered.append(answered)
        self.cpu_s.append(cpu_s)


def cpu_self() -> float:
    """CPU seconds this process has used (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    """CPU seconds this process's finished children (and theirs) have used."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds another process has used (Linux /proc: utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_rounds(
    run_round: Callable[[], int], warmup: int, rounds: int, cpu: Callable[[], float]
) -> Rounds:
    """Run warmup + rounds rounds; run_round returns how many agents answered."""
    result = Rounds()
    for n in range(warmup + rounds):
        cpu_before, start = cpu(), time.perf_counter()
        answered = run_round()
        result.record(n < warmup, time.perf_counter() - start, answered, cpu() - cpu_before)
    return result


# -- bare pysnmp ------------------------------------------------------------------------------
def bare_pysnmp(
    agents: Sequence[Agent],
    *,
    concurrency: int,
    warmup: int,
    rounds: int,
    walk: bool = False,
    stack: str = "v3arch",
) -> Rounds:
    """Every agent's five OIDs with pysnmp alone: one GET, or five GETBULKs with walk."""
    if stack == "v1arch":
        return asyncio.run(_bare_v1arch(agents, concurrency, warmup, rounds))
    return asyncio.run(_bare_v3arch(agents, concurrency, warmup, rounds, walk))


async def _bare_v3arch(
    agents: Sequence[Agent], concurrency: int, warmup: int, rounds: int, walk: bool
) -> Rounds:
    engine = SnmpEngine()
    transports = {
        port: await UdpTransportTarget.create((HOST, port), timeout=TIMEOUT_S, retries=RETRIES)
        for port in sorted({port for port, _ in agents})
    }
    context = ContextData()
    auths = [
        (CommunityData(c, mpModel=1), transports[port])  # noqa: S508 (as the agents)
        for port, c in agents
    ]
    # Register every community before the first request (timed with the first round):
    # pysnmp rebuilds its community map after each new one, so registering them one by
    # one while answers arrive costs O(n^2), about 40 s for 1,000 agents instead of 6.
    cpu_before, start = cpu_self(), time.perf_counter()
    for auth, transport in auths:
        LCD.configure(engine, auth, transport, context.contextName)
    get_varbinds = [ObjectType(ObjectIdentity(oid)) for oid in OIDS]
    columns = [oid.rsplit(".", 1)[0] for oid in OIDS]
    slots = asyncio.Semaphore(concurrency)

    async def get(auth: CommunityData, transport: UdpTransportTarget) -> bool:
        indication, status, _, answer = await get_cmd(
            engine, auth, transport, context, *get_varbinds, lookupMib=False
        )
        return indication is None and not status and len(answer) == len(OIDS)

    async def walk_column(auth: CommunityData, transport: UdpTransportTarget, column: str) -> bool:
        first = ObjectType(ObjectIdentity(column), Null(""))
        sent = bulk_cmd(engine, auth, transport, context, 0, 25, first, lookupMib=False)
        indication, status, _, answer = await sent
        return indication is None and not status and str(answer[0][0]).startswith(column)

    async def one(auth: CommunityData, transport: UdpTransportTarget) -> bool:
        async with slots:
            if not walk:
                return await get(auth, transport)
            done = await asyncio.gather(*(walk_column(auth, transport, c) for c in columns))
            return all(done)

    result = Rounds()
    try:
        for n in range(warmup + rounds):
            if n:
                cpu_before, start = cpu_self(), time.perf_counter()
            answered = sum(await asyncio.gather(*(one(a, t) for a, t in auths)))
            elapsed = time.perf_counter() - start
            result.record(n < warmup, elapsed, answered, cpu_self() - cpu_before)
    finally:
        engine.close_dispatcher()
    return result


async def _bare_v1arch(
    agents: Sequence[Agent], concurrency: int, warmup: int, rounds: int
) -> Rounds:
    dispatcher = v1arch.SnmpDispatcher()
    transports = {
        port: await v1arch.UdpTransportTarget.create(
            (HOST, port), timeout=TIMEOUT_S, retries=RETRIES
        )
        for port in sorted({port for port, _ in agents})
    }
    auths = [
        (v1arch.CommunityData(c, mpModel=1), transports[port])  # noqa: S508 (as the agents)
        for port, c in agents
    ]
    varbinds = [(ObjectName(oid), Null("")) for oid in OIDS]  # plain pairs: no MIB lookup
    slots = asyncio.Semaphore(concurrency)

    async def one(auth: v1arch.CommunityData, transport: v1arch.UdpTransportTarget) -> bool:
        async with slots:
            indication, status, _, answer = await v1arch.get_cmd(
                dispatcher, auth, transport, *varbinds, lookupMib=False
            )
            return indication is None and not status and len(answer) == len(OIDS)

    result = Rounds()
    try:
        for n in range(warmup + rounds):
            cpu_before, start = cpu_self(), time.perf_counter()
            answered = sum(await asyncio.gather(*(one(a, t) for a, t in auths)))
            elapsed = time.perf_counter() - start
            result.record(n < warmup, elapsed, answered, cpu_self() - cpu_before)
    finally:
        dispatcher.close()
    return result


# -- net-snmp snmpget ---------------------------------------------------------------------------
def snmpget(agents: Sequence[Agent], *, parallel: int, warmup: int, rounds: int) -> Rounds:
    """Every agent's five OIDs with one snmpget each, parallel at a time (xargs -P)."""
    program = shutil.which("snmpget")
    if program is None:
        raise servers.ServerNotInstalled("snmpget is missing (Debian package 'snmp')")
    # One line per agent: its community, address and the OIDs, appended to the command.
    lines = "".join(f"-c {c} {HOST}:{port} {' '.join(OIDS)}\n" for port, c in agents).encode()
    snmp = [program, "-v2c", "-t", str(TIMEOUT_S), "-r", str(RETRIES), "-On", "-Oq"]
    argv = ["xargs", "-P", str(parallel), "-L", "1", *snmp]

    def one_round() -> int:
        done = subprocess.run(argv, input=lines, capture_output=True, check=False)
        # -Oq: one "OID value" line per object; an agent that failed printed fewer.
        printed = done.stdout.decode().splitlines()
        return sum(line.startswith(f".{OIDS[0]} ") for line in printed)

    return timed_rounds(one_round, warmup, rounds, cpu_children)


# -- prometheus snmp_exporter 0.21 ---------------------------------------------------------------
METRICS = (  # (name, instance OID, type, index label) for the five OIDs
    ("rPDU2DeviceStatusPower", OIDS[0], "gauge", "rPDU2DeviceStatusIndex"),
    ("rPDU2DeviceStatusEnergy", OIDS[1], "counter", "rPDU2DeviceStatusIndex"),
    ("rPDU2DeviceStatusApparentPower", OIDS[2], "gauge", "rPDU2DeviceStatusIndex"),
    ("rPDU2PhaseStatusCurrent", OIDS[3], "gauge", "rPDU2PhaseStatusIndex"),
    ("rPDU2PhaseStatusVoltage", OIDS[4], "gauge", "rPDU2PhaseStatusIndex"),
)


def exporter_config(communities: Iterable[str]) -> str:
    """snmp.yml in 0.21's format: one module per community, auth and version inside it."""
    metrics = [
        {
            "name": name,
            "oid": oid.rsplit(".", 1)[0],
            "type": kind,
            "indexes": [{"labelname": label, "type": "gauge"}],
        }
        for name, oid, kind, label in METRICS
    ]
    modules = {
        c: {
            "version": 2,
            "auth": {"community": c},
            "timeout": f"{TIMEOUT_S}s",
            "retries": RETRIES,
            "get": list(OIDS),
            "metrics": metrics,
        }
        for c in communities
    }
    return yaml.safe_dump(modules, sort_keys=False)


def exporter_version() -> str | None:
    """The installed snmp_exporter's version line, or None when it is not installed."""
    program = shutil.which(EXPORTER)
    if program is None:
        return None
    done = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown version"


def snmp_exporter(
    folder: Path,
    agents: Sequence[Agent],
    *,
    parallel: int,
    warmup: int,
    rounds: int,
) -> Rounds:
    """Scrape every agent through snmp_exporter (started here, stopped by PID) in parallel."""
    program = shutil.which(EXPORTER)
    if program is None:
        raise servers.ServerNotInstalled(f"{EXPORTER} is not installed")
    folder.mkdir()
    config = folder / "snmp.yml"
    config.write_text(exporter_config(c for _, c in agents))
    (web_port,) = servers.free_tcp_ports(1)
    process = servers.ServerProcess(
        EXPORTER,
        [
            program,
            f"--config.file={config}",
            f"--web.listen-address={HOST}:{web_port}",
            "--log.level=warn",
        ],
        log_path=folder / "snmp_exporter.log",
        is_ready=lambda pid: servers.http_status(web_port, "/") == 200,
    )
    process.start()
    pid = process.pid

    def scrape(agent: Agent) -> bool:
        port, module = agent
        conn = http.client.HTTPConnection(HOST, web_port, timeout=30)
        try:
            conn.request("GET", f"/snmp?target={HOST}:{port}&module={module}")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        return response.status == 200 and b"\nrPDU2DeviceStatusPower{" in body

    try:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            return timed_rounds(
                lambda: sum(pool.map(scrape, agents)), warmup, rounds, lambda: cpu_of(pid)
            )
    finally:
        process.stop()
