"""Wake-on-LAN: the magic packet's bytes, and packets received on a real UDP socket.

The packets go to 127.0.0.1 instead of a subnet broadcast address (a broadcast cannot be
received back on loopback here); everything else is the real sending path.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gronkoll.settings import parse_settings
from gronkoll.wol import PACKET_BYTES, mac_bytes, magic_packet, send_magic_packets, wake_devices


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 and a free port, as a sleeping computer's card would listen."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_the_magic_packet_is_six_ff_then_sixteen_macs() -> None:
    packet = magic_packet("00:1A:2b:3c:4D:5e")
    assert len(packet) == PACKET_BYTES == 102
    assert packet[:6] == bytes([0xFF] * 6)
    mac = bytes([0x00, 0x1A, 0x2B, 0x3C, 0x4D, 0x5E])
    assert [packet[6 + 6 * i : 12 + 6 * i] for i in range(16)] == [mac] * 16


@pytest.mark.parametrize("text", ["00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e", "001A2B3C4D5E"])
def test_mac_spellings(text: str) -> None:
    assert mac_bytes(text) == bytes.fromhex("001a2b3c4d5e")


@pytest.mark.parametrize("text", ["00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5g", ""])
def test_not_a_mac(text: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC address"):
        mac_bytes(text)


def test_configured_computers_are_woken_and_one_without_a_mac_is_named(
    tmp_path: Path, receiver: socket.socket
) -> None:
    port = receiver.getsockname()[1]
    settings = parse_settings(
        {
            "municipality": {"name": "Exempelby"},
            "sites": [{"id": "skola1"}],
            "devices": [
                {"id": "pc-1", "site": "skola1", "kind": "pc", "mac": "00:1a:2b:3c:4d:01"},
                {"id": "pc-2", "site": "skola1", "kind": "pc", "mac": "00-1A-2B-3C-4D-02"},
                {"id": "pc-3", "site": "skola1", "kind": "pc"},
            ],
            "shutdown": {"wol": {"broadcast": "127.0.0.1", "port": port}},
        },
        tmp_path / "gronkoll.yaml",
    )
    failures = wake_devices(settings.devices, settings.shutdown.wol)
    assert failures == {"pc-3": "no mac configured for Wake-on-LAN"}
    got = {receiver.recvfrom(1024)[0] for _ in range(2)}
    assert got == {magic_packet("00:1a:2b:3c:4d:01"), magic_packet("00:1a:2b:3c:4d:02")}


def test_a_network_that_refuses_the_packet_is_reported_per_computer() -> None:
    # Port 0 is no destination: the kernel refuses the send, as a network that is down would.
    macs = {"pc-1": "00:1a:2b:3c:4d:01", "pc-2": "00:1a:2b:3c:4d:02"}
    failures = send_magic_packets(macs, broadcast="127.0.0.1", port=0)
    assert set(failures) == {"pc-1", "pc-2"}
    assert failures["pc-1"] == "cannot send to 127.0.0.1:0: Invalid argument"
