"""Wake-on-LAN: magic packets by UDP to the configured broadcast address and port.

A magic packet's payload is a synchronisation stream of six bytes 0xFF followed by sixteen
repetitions of the target's 48-bit IEEE (MAC) address, 102 bytes in all; a network card
armed for it wakes its computer when the sequence appears anywhere in a frame it receives.
Source: AMD, "Magic Packet Technology", white paper, publication #20213 rev. A, November 1995.
Sending it as a UDP datagram to a subnet's broadcast address (port 9, "discard", or 7 by
custom) lets it reach sleeping machines, which have no IP address to send to; a router must
forward directed broadcasts for it to reach another subnet.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Iterable, Mapping

from gronkoll.settings import Device, WakeOnLan

log = logging.getLogger(__name__)

SYNC = b"\xff" * 6
REPEATS = 16
PACKET_BYTES = len(SYNC) + REPEATS * 6

SocketFactory = Callable[[], socket.socket]


def mac_bytes(mac: str) -> bytes:
    """The six bytes of a MAC address written aa:bb:cc:dd:ee:ff, aa-bb-.., aabb.ccdd.eeff or
    aabbccddeeff; ValueError for anything else."""
    digits = re.sub(r"[:.-]", "", mac)
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", digits):
        raise ValueError(f"{mac!r} is not a MAC address (expected e.g. aa:bb:cc:dd:ee:ff)")
    return bytes.fromhex(digits)


def magic_packet(mac: str) -> bytes:
    """The magic packet that wakes the computer with this MAC address."""
    return SYNC + mac_bytes(mac) * REPEATS


def udp_broadcast_socket() -> socket.socket:
    """A UDP socket allowed to send to a broadcast address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    return sock


def send_magic_packets(
    macs: Mapping[str, str],
    *,
    broadcast: str,
    port: int,
    socket_factory: SocketFactory = udp_broadcast_socket,
) -> dict[str, str]:
    """Send one magic packet per name → MAC; returns name → why for those not sent."""
    failures: dict[str, str] = {}
    with socket_factory() as sock:
        for name, mac in macs.items():
            try:
                sock.sendto(magic_packet(mac), (broadcast, port))
            except ValueError as err:
                failures[name] = str(err)
            except OSError as err:
                failures[name] = f"cannot send to {broadcast}:{port}: {err.strerror or err}"
    for name, why in failures.items():
        log.warning("Wake-on-LAN for %s: %s", name, why)
    return failures


def wake_devices(
    devices: Iterable[Device],
    settings: WakeOnLan,
    *,
    socket_factory: SocketFactory = udp_broadcast_socket,
) -> dict[str, str]:
    """Wake computers by their configured MAC; returns device id → why for those not woken
    (no MAC configured, or the packet could not be sent)."""
    failures: dict[str, str] = {}
    macs: dict[str, str] = {}
    for device in devices:
        if device.mac is None:
            failures[device.id] = "no mac configured for Wake-on-LAN"
        else:
            macs[device.id] = device.mac
    if macs:
        failures |= send_magic_packets(
            macs, broadcast=settings.broadcast, port=settings.port, socket_factory=socket_factory
        )
    return failures
