"""The second, independent signal that a computer went off: its plug's power, or SNMP silence.

A PC's own smart plug or PDU outlet is a device of kind ``meter`` that the PC names in
``metered_by`` and that meters nothing else (a meter shared by several devices cannot say
whether one of them is off). Its latest ``power_w`` reading, taken after the command was
sent, below the PC's off power (its power profile's ``off_w``) plus ``shutdown.off_margin_w``
(1 W by default: a plug's accuracy at a few watts; sleep, up to 5 W under EU 617/2013 and
2 W in the default profile, stays above it) says off; above it, on. A PC with an ``snmp`` block that stopped answering the collector's polls after the
command (the device status' last error is newer than its last success) says off; one that
answered after the command says on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gronkoll.settings import Device, Settings
from gronkoll.statedb import StateDB
from gronkoll.stores.base import TimeSeriesStore

Says = Literal["off", "on"]


@dataclass(frozen=True, slots=True)
class Signal:
    """What the second signal says about one machine, since when, and from where."""

    kind: Literal["plug", "snmp"]
    source: str
    says: Says | None  # None: no evidence newer than the command yet
    at: datetime | None
    detail: str


class SecondSignals:
    """Reads the second signal of many machines at once from the store and device status."""

    def __init__(
        self,
        settings: Settings,
        store: TimeSeriesStore,
        state: StateDB,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.margin_w = settings.shutdown.off_margin_w
        metered = Counter(d.metered_by for d in settings.devices if d.metered_by)
        self._plug = {
            d.id: d.metered_by
            for d in settings.devices
            if d.metered_by is not None and metered[d.metered_by] == 1
        }

    def plug_of(self, device: Device) -> str | None:
        """The meter that measures this machine alone, or None."""
        return self._plug.get(device.id)

    def has_signal(self, device: Device) -> bool:
        """Whether the machine has a second signal at all."""
        return device.id in self._plug or device.snmp is not None

    def off_threshold_w(self, device: Device) -> float:
        """Below this draw the machine counts as off."""
        profile = self.settings.power_profile(device)
        off_w = profile.off_w if profile is not None and profile.off_w is not None else 0.0
        return off_w + self.margin_w

    def read(self, devices: Iterable[Device], since: datetime) -> dict[str, Signal]:
        """The signal of each machine that has one, counting only evidence from since on."""
        devices = [d for d in devices if self.has_signal(d)]
        if not devices:
            return {}
        since_ms = since.timestamp() * 1000
        power = self.store.latest("power_w") if any(d.id in self._plug for d in devices) else {}
        status = self.state.device_status() if any(d.snmp for d in devices) else {}
        out: dict[str, Signal] = {}
        for d in devices:
            plug = self._plug.get(d.id)
            if plug is not None:
                out[d.id] = self._plug_signal(d, plug, power.get(plug), since_ms)
            elif d.snmp is not None:
                out[d.id] = _snmp_signal(status.get(d.id), since)
        return out

    def _plug_signal(
        self, device: Device, plug: str, latest: tuple[int, float] | None, since_ms: float
    ) -> Signal:
        if latest is None or latest[0] < since_ms:
            return Signal("plug", plug, None, None, f"plug {plug}: no reading since the command")
        t_ms, watts = latest
        limit = self.off_threshold_w(device)
        says: Says = "off" if watts < limit else "on"
        at = datetime.fromtimestamp(t_ms / 1000, UTC)
        detail = (
            f"plug {plug} draws {watts:g} W ({'under' if says == 'off' else 'over'} {limit:g} W)"
        )
        return Signal("plug", plug, says, at, detail)


def _snmp_signal(status: object, since: datetime) -> Signal:
    last_success = getattr(status, "last_success", None)
    last_error_at = getattr(status, "last_error_at", None)
    if last_success is not None and last_success >= since:
        return Signal("snmp", "snmp", "on", last_success, "answered SNMP after the command")
    if last_error_at is not None and last_error_at >= since:
        if last_success is None or last_success < last_error_at:
            return Signal("snmp", "snmp", "off", last_error_at, "no longer answers SNMP")
    return Signal("snmp", "snmp", None, None, "SNMP: not polled since the command")


def disagreement(agent: str | None, signal: Signal | None) -> str | None:
    """A sentence when the agent's word and the second signal differ, else None."""
    if agent is None or signal is None or signal.says is None:
        return None
    agent_off = agent in ("off", "offline")
    if agent_off == (signal.says == "off"):
        return None
    return f"the agent says {agent}, but {signal.detail}"
