"""`gronkoll collect`, `devices` and `snmp probe` against a real snmpd, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servers

from gronkoll.cli import main
from gronkoll.collector import probe
from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.profiles import ProfileSet, load_profiles
from gronkoll.runtime import Runtime
from gronkoll.settings import load_settings
from gronkoll.statedb import StateDB, StatusUpdate

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, devices: str, extra: str = "") -> Path:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(
        f"""\
municipality: {{name: Exempelby}}
sites:
  - {{id: serverrum, kind: server_room}}
devices:
{devices}
store: {{kind: sqlite, path: data}}
{extra}""",
        encoding="utf-8",
    )
    return path


def v2c(agent: servers.Snmpd, community: str | None = None, **extra: object) -> str:
    items = {"host": agent.host, "port": agent.port, "community": community or agent.community}
    items.update(extra)
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in items.items()) + "}"


def v3(agent: servers.Snmpd, *, auth: str | None = None, priv: str | None = None) -> str:
    return (
        f"{{host: {agent.host}, port: {agent.port}, version: 3, user: {agent.v3_user}, "
        f"auth_protocol: SHA, auth_key: {json.dumps(auth or agent.auth_password)}, "
        f"priv_protocol: AES, priv_key: {json.dumps(priv or agent.priv_password)}, "
        "timeout_s: 0.5, retries: 0}"
    )


def devices_json(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, dict[str, Any]]:
    code, out, err = run(capsys, "-c", str(config), "devices", "--format", "json")
    assert code == 0, err
    return {d["id"]: d for d in json.loads(out)["devices"]}


# -- collect --once and devices ----------------------------------------------------------------
def test_collect_once_stores_readings_and_devices_shows_them_with_units(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, snmpd: servers.Snmpd
) -> None:
    dead_port = servers.free_udp_port()  # nothing listens there
    config = write_config(
        tmp_path,
        f"""\
  - {{id: srv-1, site: serverrum, kind: server, profile: host-resources, snmp: {v2c(snmpd)}}}
  - {{id: srv-2, site: serverrum, kind: server, snmp: {v2c(snmpd)}}}
  - id: dead-1
    site: serverrum
    kind: ups
    snmp: {{host: 127.0.0.1, port: {dead_port}, community: public, timeout_s: 0.3, retries: 0}}
  - {{id: meter-1, site: serverrum, kind: meter}}
""",
    )
    code, out, err = run(capsys, "-c", str(config), "collect", "--once")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1] not in (" ", "")}
    assert " ok " in lines["srv-1"] and "profile host-resources," in lines["srv-1"]
    assert " ok " in lines["srv-2"] and "profile host-resources," in lines["srv-2"]
    assert "note   profile: sysObjectID 1.3.6.1.4.1.8072." in out  # srv-2's was detected
    assert f"error  dead-1 (127.0.0.1:{dead_port}): no answer" in lines["dead-1"]
    assert "3 devices polled: 2 ok, 1 failed" in out

    found = devices_json(capsys, config)
    srv = found["srv-1"]
    assert srv["status"] == "ok" and srv["last_error"] is None
    assert srv["profile"] == "host-resources" and srv["profile_reason"] == "configured"
    assert srv["readings"]["uptime_s"]["unit"] == "s" and srv["readings"]["uptime_s"]["value"] > 0
    assert srv["readings"]["reachable"]["value"] == 1
    assert found["srv-2"]["profile_reason"] not in (None, "configured")
    dead = found["dead-1"]
    assert dead["status"] == "failing" and dead["consecutive_failures"] == 1
    assert dead["last_error"].startswith(f"dead-1 (127.0.0.1:{dead_port}): no answer")
    assert dead["readings"]["reachable"]["value"] == 0
    meter = found["meter-1"]
    assert meter["snmp"] is None and meter["status"] == "no readings" and meter["readings"] == {}

    code, out, _ = run(capsys, "-c", str(config), "devices")
    assert code == 0
    assert "srv-1" in out and "uptime_s" in out and " s," in out
    assert "host-resources (configured)" in out and "host-resources (detected)" in out
    assert "error (1 failed poll," in out and "meter-1" in out


def test_wrong_credentials_give_an_error_naming_the_device_and_never_the_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, snmpd: servers.Snmpd
) -> None:
    config = write_config(
        tmp_path,
        f"""\
  - {{id: v2c-wrong, site: serverrum, kind: server, profile: host-resources,
     snmp: {v2c(snmpd, "not-the-community", timeout_s=0.3, retries=0)}}}
  - {{id: v3-wrong-auth, site: serverrum, kind: server, profile: host-resources,
     snmp: {v3(snmpd, auth="wrong-auth-key")}}}
  - {{id: v3-wrong-priv, site: serverrum, kind: server, profile: host-resources,
     snmp: {v3(snmpd, priv="wrong-priv-key")}}}
  - {{id: v3-ok, site: serverrum, kind: server, profile: host-resources, snmp: {v3(snmpd)}}}
""",
    )
    code, out, err = run(capsys, "-c", str(config), "collect", "--once")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1] not in (" ", "")}
    assert "error  v2c-wrong (" in lines["v2c-wrong"]
    assert "community is wrong" in lines["v2c-wrong"]
    assert "error  v3-wrong-auth (" in lines["v3-wrong-auth"]
    assert "wrong auth key" in lines["v3-wrong-auth"]
    assert "error  v3-wrong-priv (" in lines["v3-wrong-priv"]
    assert "wrong priv key" in lines["v3-wrong-priv"]
    assert " ok " in lines["v3-ok"]
    code, listing, _ = run(capsys, "-c", str(config), "devices", "--format", "json")
    for secret in (
        "not-the-community",
        "wrong-auth-key",
        "wrong-priv-key",
        snmpd.community,
        snmpd.auth_password,
        snmpd.priv_password,
    ):
        assert secret not in out + err + listing


def test_collect_refuses_a_bad_config_before_polling(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, snmpd: servers.Snmpd
) -> None:
    config = write_config(
        tmp_path,
        f"  - {{id: pdu-1, site: serverrum, kind: pdu, profile: no-such, snmp: {v2c(snmpd)}}}\n",
    )
    for command in ("check-config", "collect"):
        code, _, err = run(
            capsys, "-c", str(config), command, *(["--once"] * (command == "collect"))
        )
        assert code == 2
        assert "devices[0].profile: unknown profile 'no-such'" in err
    assert not (tmp_path / "data").exists()  # refused before anything was opened

    bad = {
        "{host: 127.0.0.1}": "SNMP v2c needs a community",
        "{host: 127.0.0.1, version: 3, user: u, auth_protocol: SHA, auth_key: short}": (
            "auth_key must be at least 8 characters"
        ),
    }
    for snmp, message in bad.items():
        write_config(tmp_path, f"  - {{id: pdu-1, site: serverrum, kind: pdu, snmp: {snmp}}}\n")
        code, _, err = run(capsys, "-c", str(config), "collect", "--once")
        assert code == 2 and "devices[0].snmp" in err and message in err
        assert "short" not in err


def test_collect_with_no_snmp_devices_says_so(
    capsys: pytest.CaptureFixture[str], minimal_config: Path
) -> None:
    code, out, _ = run(capsys, "-c", str(minimal_config), "collect", "--once")
    assert code == 0 and "no device has an snmp block" in out


def test_odd_values_are_recorded_against_the_device_not_fatal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, snmpd: servers.Snmpd
) -> None:
    own = tmp_path / "profiles"
    own.mkdir()
    (own / "odd-agent.yaml").write_text(
        """\
id: odd-agent
name: An agent whose objects do not fit (test)
mib: HOST-RESOURCES-MIB, SNMPv2-MIB
verified: a test profile; sysDescr is text, not a temperature
metrics:
  - {field: uptime_s, object: hrSystemUptime, oid: 1.3.6.1.2.1.25.1.1.0, scale: 0.01}
  - {field: temperature_c, object: sysDescr, oid: 1.3.6.1.2.1.1.1.0}
  - {field: power_w, object: rPDU2DeviceStatusPower, oid: 1.3.6.1.4.1.318.1.1.26.4.3.1.5.1}
""",
        encoding="utf-8",
    )
    config = write_config(
        tmp_path,
        f"  - {{id: odd-1, site: serverrum, kind: server, profile: odd-agent, snmp: {v2c(snmpd)}}}\n",
        "collector: {profiles_dir: profiles}\n",
    )
    code, out, err = run(capsys, "-c", str(config), "collect", "--once")
    assert code == 0, err
    assert "odd-1" in out and " ok " in out and "note" in out
    odd = devices_json(capsys, config)["odd-1"]
    assert odd["status"] == "ok" and "uptime_s" in odd["readings"]
    problems = " ".join(odd["problems"])
    assert "temperature_c" in problems or "sysDescr" in problems
    assert "power_w" in problems or "rPDU2DeviceStatusPower" in problems


# -- collect as a service ----------------------------------------------------------------------
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_collect_cleanly_with_the_readings_stored(
    tmp_path: Path, snmpd: servers.Snmpd, stop: signal.Signals
) -> None:
    config = write_config(
        tmp_path,
        f"  - {{id: srv-1, site: serverrum, kind: server, profile: host-resources, snmp: {v2c(snmpd)}}}\n",
        "collector: {jitter_s: 0}\n",
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "gronkoll.cli", "-c", str(config), "collect"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        stderr = proc.stderr
        assert stderr is not None
        reader = threading.Thread(target=lambda: [lines.put(x) for x in stderr], daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + DEADLINE_S
            while not any("first round done" in x for x in seen):
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            assert "1 answered" in seen[-1]
            proc.send_signal(stop)
            assert proc.wait(timeout=DEADLINE_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=DEADLINE_S)
    rest = "".join(seen) + "".join(lines.queue)
    assert "Traceback" not in rest and "stopped; " in rest
    with Runtime(load_settings(config)) as runtime:
        assert "srv-1" in runtime.store.latest("uptime_s")
        assert runtime.state.device_status()["srv-1"].last_success is not None


# -- snmp probe --------------------------------------------------------------------------------
def test_probe_shows_the_profile_and_readings_and_never_the_community(
    capsys: pytest.CaptureFixture[str],
    snmpd: servers.Snmpd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # no gronkoll.yaml here: the probe needs none
    address = f"{snmpd.host}:{snmpd.port}"
    code, out, err = run(capsys, "snmp", "probe", address, "--community", snmpd.community)
    assert code == 0, err
    assert "profile      host-resources" in out and "sysObjectID  1.3.6.1.4.1.8072." in out
    assert "uptime_s" in out and "reachable" in out
    assert snmpd.community not in out + err

    code, out, err = run(
        capsys,
        "snmp",
        "probe",
        address,
        "--v3-user",
        snmpd.v3_user,
        "--auth-protocol",
        "SHA",
        "--auth-key",
        snmpd.auth_password,
        "--priv-protocol",
        "AES",
        "--priv-key",
        snmpd.priv_password,
    )
    assert code == 0, err and "host-resources" in out
    assert snmpd.auth_password not in out + err and snmpd.priv_password not in out + err


def test_probe_errors_are_plain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    port = servers.free_udp_port()
    code, _, err = run(
        capsys, "snmp", "probe", f"127.0.0.1:{port}", "--community", "sekret", "--timeout", "0.3"
    )
    assert code == 1 and f"probe (127.0.0.1:{port}): no answer" in err and "sekret" not in err
    code, _, err = run(
        capsys,
        "snmp",
        "probe",
        "127.0.0.1",
        "--v3-user",
        "u",
        "--auth-protocol",
        "SHA",
        "--auth-key",
        "short",
    )
    assert code == 2 and "at least 8 characters" in err and "short" not in err.split(":", 2)[-1]
    code, _, err = run(capsys, "snmp", "probe", "127.0.0.1:99999")
    assert code == 2 and "not HOST[:PORT]" in err


def test_probe_says_plainly_when_no_profile_matches(snmpd: servers.Snmpd) -> None:
    shipped = load_profiles()
    only_pdus = ProfileSet(
        profiles={"apc-rpdu2": shipped.profiles["apc-rpdu2"]},
        sources={"apc-rpdu2": shipped.sources["apc-rpdu2"]},
    )
    target = SnmpTarget(
        device_id="probe", host=snmpd.host, port=snmpd.port, community=snmpd.community
    )

    async def main() -> probe.Probe:
        async with SnmpClient() as client:
            return await probe.probe(client, target, only_pdus)

    lines, matched = probe.describe(target, asyncio.run(main()))
    text = "\n".join(lines)
    assert not matched
    assert f"No profile matches {snmpd.host}:{snmpd.port}: sysObjectID 1.3.6.1.4.1.8072." in text
    assert "sysDescr     Linux" in text and "add a profile" in text
    assert snmpd.community not in text


# -- the status rows -----------------------------------------------------------------------------


def test_device_status_rows_are_written_over_and_read_back(state_db: StateDB) -> None:
    t = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    first = StatusUpdate(
        device_id="pdu-1",
        last_seen=t,
        last_success=t,
        last_error=None,
        last_error_at=None,
        consecutive_failures=0,
        last_poll_at=t,
        last_duration_s=0.25,
        profile="apc-rpdu2",
        profile_reason="configured",
        problems=("missing current_a",),
        last_problem="missing current_a",
        last_problem_at=t,
    )
    state_db.save_device_statuses([first])
    row = state_db.device_status()["pdu-1"]
    assert row.profile == "apc-rpdu2" and row.problem_list == ["missing current_a"]
    assert row.last_duration_s == 0.25 and row.consecutive_failures == 0
    assert row.last_success == t and row.last_success.tzinfo is not None  # UTC, also on SQLite
    later = t + timedelta(minutes=2)
    failing = replace(
        first,
        last_error="pdu-1: no answer",
        last_error_at=later,
        consecutive_failures=2,
        problems=(),
    )
    state_db.save_device_statuses([failing, replace(first, device_id="ups-1")])
    rows = state_db.device_status()
    assert set(rows) == {"pdu-1", "ups-1"}
    assert rows["pdu-1"].consecutive_failures == 2 and rows["pdu-1"].problem_list == []
    assert rows["pdu-1"].last_error == "pdu-1: no answer"
    assert rows["pdu-1"].last_problem == "missing current_a"  # kept: the last one seen
