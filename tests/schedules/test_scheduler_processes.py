"""One active scheduler among real `gronkoll schedule` processes sharing a state database:
a PostgreSQL advisory lock (or a file lock beside SQLite); killing the leader with SIGKILL
lets a standby take over; SIGTERM stops a scheduler cleanly. `gronkoll run` runs collector,
scheduler and API in one process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_traffic import wait_for
from test_scheduler import school_settings

from gronkoll.statedb import StateDB

ACTIVE = "Scheduler active"
STANDBY = "Scheduler standing by"


class Node:
    """A `gronkoll` process whose output goes to a file the test reads."""

    def __init__(self, config: Path, name: str, *command: str) -> None:
        self.log = config.parent / f"{name}.log"
        self.output = self.log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gronkoll.cli", "-c", str(config), *command],
            stdout=self.output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self) -> int:
        """SIGTERM; the exit code (the process must stop on its own within the deadline)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.output.close()
        return code


@pytest.fixture
def config(tmp_path: Path, state_db: StateDB) -> Path:
    settings = school_settings(tmp_path, state_db.url)
    text = settings.source.read_text(encoding="utf-8")
    text = text.replace("  breaks:\n", "  leader_poll_s: 0.2\n  breaks:\n")
    settings.source.write_text(text, encoding="utf-8")
    return settings.source


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
        node.output.close()


@pytest.mark.integration
@pytest.mark.slow
def test_one_scheduler_is_active_and_a_standby_takes_over_from_a_killed_leader(
    config: Path, nodes: list[Node], state_db: StateDB
) -> None:
    first = Node(config, "first", "schedule")
    nodes.append(first)
    wait_for(lambda: ACTIVE in first.text(), "the first node to become active")
    lock = "PostgreSQL advisory lock" if state_db.url.startswith("postgresql") else "file lock"
    assert lock in first.text()
    second = Node(config, "second", "schedule")
    nodes.append(second)
    wait_for(lambda: STANDBY in second.text(), "the second node to stand by")
    assert ACTIVE not in second.text()

    first.proc.send_signal(signal.SIGKILL)  # no clean-up: the lock must go with the process
    first.proc.wait(timeout=30)
    wait_for(lambda: ACTIVE in second.text(), "the standby to take over")
    assert "4 jobs from 4 policies" in second.text()  # the same job store, kept
    assert second.stop() == 0
    assert second.text().rstrip().endswith("Scheduler stopped.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("state_db", ["sqlite"], indirect=True)
@pytest.mark.parametrize("collects", [False, True], ids=["nothing-to-collect", "mqtt"])
def test_gronkoll_run_serves_the_api_beside_the_scheduler(
    config: Path, nodes: list[Node], collects: bool, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    with config.open("a", encoding="utf-8") as f:
        f.write(f"api: {{host: 127.0.0.1, port: {port}}}\n")
        if collects:  # the collector then runs in the main thread and takes the signals
            broker = request.getfixturevalue("mosquitto")
            f.write(
                f"mqtt:\n  host: {broker.host}\n  port: {broker.port}\n"
                f"  client_id: run-{port}\n  session_expiry_s: 0\n  subscriptions:\n"
                "    - {topic: 'tele/+/SENSOR', format: tasmota, device_level: 1}\n"
            )
    node = Node(config, "run", "run")
    nodes.append(node)
    wait_for(lambda: ACTIVE in node.text(), "the scheduler to become active")

    def health() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError:
            return False

    wait_for(health, "the API to answer")
    assert f"Serving the Gronkoll API on http://127.0.0.1:{port}" in node.text()
    if collects:
        wait_for(lambda: "taking MQTT messages from" in node.text(), "the collector to start")
    assert node.stop() == 0
    assert "Scheduler stopped." in node.text() and node.text().rstrip().endswith("Stopped.")


def test_the_systemd_unit_runs_gronkoll_run_with_its_config() -> None:
    import configparser
    import shlex

    from gronkoll.cli import build_parser
    from gronkoll.cli_shutdown import cmd_run

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(Path(__file__).parents[2] / "deploy" / "gronkoll.service", encoding="utf-8")
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert exec_start[0].endswith("/gronkoll")
    args = build_parser().parse_args(exec_start[1:])
    assert args.func is cmd_run and args.config == "/etc/gronkoll/gronkoll.yaml"
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.integration
@pytest.mark.parametrize("state_db", ["sqlite"], indirect=True)
def test_gronkoll_run_exits_with_an_error_when_the_scheduler_cannot_run(
    config: Path, nodes: list[Node]
) -> None:
    # The state database is a PostgreSQL where nothing listens: the scheduler cannot start,
    # and the whole process stops (exit 1) rather than serve on without shutdowns.
    port = free_port()
    text = config.read_text(encoding="utf-8")
    before = text[text.index("state_url: '") + 12 :].split("'")[0]
    dead = f"postgresql+psycopg://gronkoll@127.0.0.1:{free_port()}/gronkoll"
    config.write_text(
        text.replace(before, dead) + f"api: {{host: 127.0.0.1, port: {port}}}\n",
        encoding="utf-8",
    )
    node = Node(config, "run", "run")
    nodes.append(node)
    assert node.proc.wait(timeout=60) == 1
    assert "gronkoll: the scheduler stopped: " in node.text()
    assert "cannot open the state database" in node.text()
