"""A maintenance window opens: run_policy(action="wake") sends magic packets and audits them.

The packets go to 127.0.0.1 and a socket of the test receives them there (a subnet's
broadcast cannot be used on this machine)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import servers
import yaml
from shutdown_school import PLANNED, Clock, write_school

from gronkoll.runtime import Runtime
from gronkoll.schedules.context import enforcement
from gronkoll.schedules.enforce import run_policy
from gronkoll.wol import magic_packet

pytestmark = pytest.mark.integration


def test_a_wake_sends_one_magic_packet_per_computer_with_a_mac(
    tmp_path: Path, mosquitto: servers.Mosquitto
) -> None:
    school = write_school(tmp_path, mosquitto, ["m1", "m2", "nomac"])
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    config = yaml.safe_load(school.path.read_text(encoding="utf-8"))
    macs = {school.id("m1"): "00:11:22:33:44:01", school.id("m2"): "00:11:22:33:44:02"}
    for device in config["devices"]:
        if device["id"] in macs:
            device["mac"] = macs[device["id"]]
    config["shutdown"]["wol"] = {"broadcast": "127.0.0.1", "port": receiver.getsockname()[1]}
    school.path.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = school.settings()
    try:
        with Runtime(settings) as runtime:
            with enforcement(settings, runtime, clock=Clock(PLANNED)) as ctx:
                run_policy(ctx, "skolor-kvall", PLANNED, action="wake")
            log = runtime.state.audit_log()
        packets = {receiver.recvfrom(1024)[0] for _ in macs}
    finally:
        receiver.close()
    assert packets == {magic_packet(mac) for mac in macs.values()}
    assert {(r.device, r.action, r.outcome, r.reason) for r in log} == {
        (school.id("m1"), "wake", "sent", None),
        (school.id("m2"), "wake", "sent", None),
        (school.id("nomac"), "wake", "failed", "no mac configured for Wake-on-LAN"),
    }
