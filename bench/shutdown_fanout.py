"""Benchmark: a shutdown policy fires for 5,000 computers; time until every one is verified.

A Mosquitto started here (127.0.0.1, a free port, a temporary folder, stopped at the end; the
config of bench/mqtt_ingest.py) carries the commands. The fleet is simulated in a second
process (schedules/fleet_sim.py): 5,000 agents on one MQTT connection per 500, each checking
every command with the real decode_command (HMAC-SHA256, expiry, replay guard) and answering
like the agent: ``accepted``, its state ``off`` (retained), ``done``. Measured:

* Gronkoll: `run_policy` as the scheduler calls it, from the firing until every computer has
  a verified outcome written to the state database (SQLite): targets resolved, 5,000 commands
  signed and published at QoS 1 (every PUBACK awaited), the agents' retained states and
  replies watched, each computer verified, 10,000 audit records and 5,000 results written.
  Peak RSS of this (the scheduler's) process.
* the floor, in the same run on the same broker and fleet: a bare paho client publishes the
  same number of pre-signed commands at QoS 1 and a bare subscriber counts the agents'
  ``done`` replies; no verification, no database.

Targets (issue 6): under 60 s, scheduler peak RSS under 300 MB. Broker, fleet and scheduler
share this 2-core machine (with other work on it), so the figures are indicative.

    .venv/bin/python bench/shutdown_fanout.py
    .venv/bin/python bench/shutdown_fanout.py --devices 500     # a quicker look
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
import yaml
from mqtt_ingest import HOST, start_mosquitto

from gronkoll.commands import command_topic, encode_command, new_command
from gronkoll.mqtt_client import BrokerAccess
from gronkoll.runtime import Runtime
from gronkoll.schedules.context import enforcement
from gronkoll.schedules.enforce import run_policy
from gronkoll.schedules.fleet_sim import SimAgent, SimulatedFleet
from gronkoll.settings import load_settings

SITES = 10


def key(site: str) -> str:
    return f"{site}-bench-signing-key-0123456789abcdef"


def write_config(folder: Path, port: int, devices: int) -> Path:
    sites = [f"skola{i:02d}" for i in range(SITES)]
    config = {
        "municipality": {"name": "Bänkby", "timezone": "Europe/Stockholm"},
        "sites": [{"id": s, "kind": "school"} for s in sites],
        "groups": [{"id": f"elever-{s}", "site": s} for s in sites],
        "devices": [
            {
                "id": f"pc-{i:05d}",
                "site": sites[i % SITES],
                "group": f"elever-{sites[i % SITES]}",
                "kind": "pc",
            }
            for i in range(devices)
        ],
        "store": {"kind": "sqlite", "path": "data"},
        "mqtt": {"host": HOST, "port": port},
        "shutdown": {
            "signing_keys": {s: key(s) for s in sites},
            "policies": [
                {
                    "name": "kvall",
                    "groups": [f"elever-{s}" for s in sites],
                    "shutdown": "30 18 * * mon-fri",
                    "calendar": "none",
                }
            ],
            "verify_deadline_s": 120,
        },
    }
    path = folder / "gronkoll.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


# -- the fleet, in its own process -------------------------------------------------------------
def fleet_worker(config: Path, per_connection: int) -> None:
    """Run the simulated fleet; commands on stdin: reset, stop."""
    settings = load_settings(config)
    assert settings.mqtt is not None
    access = BrokerAccess(host=settings.mqtt.host, port=settings.mqtt.port)
    agents = [SimAgent(device=d.id, site=d.site) for d in settings.devices]
    keys = {s: k.get_secret_value().encode() for s, k in settings.shutdown.signing_keys.items()}
    fleet = SimulatedFleet(
        access, agents, keys, clock=lambda: datetime.now(UTC), per_connection=per_connection
    )
    fleet.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            fleet.reset()
            print("ready", flush=True)
        elif line.strip() == "stop":
            break
    answered = fleet.answered
    fleet.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"done {answered} {rss_mb:.0f}", flush=True)


class Fleet:
    """The fleet process, driven over its stdin."""

    def __init__(self, config: Path, per_connection: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--fleet",
                str(config),
                "--per-connection",
                str(per_connection),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def expect(self, word: str) -> list[str]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != word:
            raise SystemExit(f"the fleet process said {line!r}, not {word!r}")
        return line

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()


# -- the two measurements --------------------------------------------------------------------
def gronkoll_run(config: Path) -> tuple[float, dict[str, int], float]:
    settings = load_settings(config)
    outcomes: dict[str, int] = {}
    with Runtime(settings) as runtime, enforcement(settings, runtime, actor="bench") as ctx:
        fired = datetime.now(UTC)
        t0 = time.perf_counter()
        run = run_policy(ctx, "kvall", fired)
        seconds = time.perf_counter() - t0
    for r in run.results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, outcomes, rss_mb


def bare_run(config: Path, port: int) -> float:
    settings = load_settings(config)
    keys = {s: k.get_secret_value().encode() for s, k in settings.shutdown.signing_keys.items()}
    now = datetime.now(UTC)
    payloads = []
    for d in settings.devices:
        cmd = new_command(d.id, d.site, "shutdown", now=now, ttl_s=600)
        payloads.append((command_topic(d.site, d.id), encode_command(cmd, keys[d.site])))
    done = threading.Event()
    count = [0]

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if b'"done"' in msg.payload:
            count[0] += 1
            if count[0] == len(payloads):
                done.set()

    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(HOST, port)
    sub.loop_start()
    sub.subscribe("gronkoll/agent/+/reply", qos=1)
    subscribed.wait(10)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare-pub")
    pub.max_inflight_messages_set(0)
    pub.connect(HOST, port)
    pub.loop_start()
    t0 = time.perf_counter()
    infos = [pub.publish(topic, data, qos=1) for topic, data in payloads]
    for info in infos:
        info.wait_for_publish(60)
    if not done.wait(120):
        raise SystemExit(f"the bare run saw {count[0]} of {len(payloads)} done replies")
    seconds = time.perf_counter() - t0
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--per-connection", type=int, default=500)
    parser.add_argument("--fleet", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fleet:
        fleet_worker(Path(args.fleet), args.per_connection)
        return
    with tempfile.TemporaryDirectory(prefix="gk-fanout-") as tmp:
        folder = Path(tmp)
        broker, port = start_mosquitto(folder / "mosquitto")
        try:
            config = write_config(folder, port, args.devices)
            fleet = Fleet(config, args.per_connection)
            seconds, outcomes, rss_mb = gronkoll_run(config)
            fleet.tell("reset")
            fleet.expect("ready")
            bare_s = bare_run(config, port)
            fleet.tell("stop")
            _, answered, fleet_rss = fleet.expect("done")
            fleet.proc.wait(30)
        finally:
            broker.terminate()
            broker.wait(10)
    n = args.devices
    connections = -(-n // args.per_connection)
    print(
        f"shutdown fan-out: {n} simulated agents on {connections} MQTT connections "
        f"({args.per_connection} agents each), Mosquitto on {HOST}"
    )
    print(
        f"  Gronkoll run_policy, firing -> every computer verified: {seconds:.2f} s "
        f"(target < 60 s); outcomes {outcomes}"
    )
    print(
        f"  bare paho publish -> every 'done' reply (no verification, no database): {bare_s:.2f} s"
    )
    print(f"  ratio Gronkoll / bare: {seconds / bare_s:.1f}x")
    print(
        f"  scheduler peak RSS: {rss_mb:.0f} MB (target < 300 MB); fleet process peak RSS "
        f"{fleet_rss} MB, {answered} commands answered"
    )
    print(
        f"  machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, paho-mqtt {paho.mqtt.__version__}; shared with other "
        "work, so indicative"
    )
    print("  source: bench/shutdown_fanout.py (this run)")


if __name__ == "__main__":
    main()
