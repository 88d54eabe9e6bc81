"""Audit-only mode: was a computer on at the planned time, and what says so.

A policy in audit-only mode sends nothing; it records what it would have shut down. The
agent's retained state is the best witness, then the newest ``state`` reading in the store,
then the computer's own plug (or SNMP); with none of them the answer is ``unknown``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gronkoll.fields import STATE_CODES
from gronkoll.schedules.agent_watch import AgentState
from gronkoll.schedules.signals import SecondSignals
from gronkoll.settings import Device

OFF_CODE = float(STATE_CODES["off"])
EPOCH = datetime.fromtimestamp(0, UTC)


def observed(
    device: Device,
    agent: AgentState | None,
    stored: tuple[int, float] | None,
    signals: SecondSignals,
) -> tuple[str, str]:
    """``on``, ``off`` or ``unknown``, and the evidence in words."""
    if agent is not None:
        return ("off" if agent.state in ("off", "offline") else "on"), f"agent: {agent.state}"
    if stored is not None:
        return ("off" if stored[1] == OFF_CODE else "on"), "the latest state reading"
    signal = signals.read([device], EPOCH).get(device.id)
    if signal is not None and signal.says is not None:
        return signal.says, signal.detail
    return "unknown", "no agent and no second signal"
