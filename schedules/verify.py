"""Deciding, from what the agent says and the second signal, whether a machine went off.

One `Tracking` per machine follows a shutdown: the command sent, the deadline, the retries
left. `step` looks at the newest evidence and says what happened: still waiting, send again,
or a final verdict. The rules, in order:

- the agent skipped the shutdown because its user was active: non-compliant, ``user-active``;
- the agent postponed (its user asked, once): the deadline moves by the postponement;
- the agent said ``off`` or went ``offline`` after the command, and the second signal, where
  one exists and has news, agrees: off at the agent's time;
- no agent, and the second signal says off: off at the signal's time;
- no agent and no second signal: nothing can verify it, non-compliant ``no-agent``;
- the deadline passed, the agent never reported off, but the second signal says off: off at
  the signal's time, the disagreement kept;
- the deadline passed: send again while retries are left, else non-compliant:
  ``user-active`` after a postponement, ``no-agent`` when no agent ever answered, else
  ``did-not-go-off``. A disagreement between the agent and the second signal is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from gronkoll.commands import Command, Reply
from gronkoll.schedules.agent_watch import AgentState
from gronkoll.schedules.signals import Signal, disagreement

Kind = Literal["wait", "resend", "done"]


@dataclass(kw_only=True)
class Tracking:
    """One machine's shutdown as it is being verified."""

    device: str
    has_agent: bool
    has_second: bool
    command: Command | None
    sent_at: datetime
    deadline: datetime
    attempts: int = 1
    postponed: bool = False
    disagreement: str | None = None
    replies_seen: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Step:
    """What to do next with one machine; a verdict when kind is done."""

    kind: Kind
    outcome: str | None = None  # off | non-compliant
    reason: str | None = None
    off_at: datetime | None = None


WAIT = Step("wait")
RESEND = Step("resend")


def step(
    track: Tracking,
    *,
    agent: AgentState | None,
    replies: list[Reply],
    signal: Signal | None,
    now: datetime,
    retries: int,
    postpone_s: float,
) -> Step:
    """The next step for one machine, given the newest evidence."""
    for reply in replies[track.replies_seen :]:
        track.notes.append(
            f"agent replied {reply.outcome}" + (f" ({reply.reason})" if reply.reason else "")
        )
        if reply.outcome == "skipped-user-active":
            return Step("done", "non-compliant", "user-active")
        if reply.outcome == "postponed" and not track.postponed:
            track.postponed = True
            track.deadline += timedelta(seconds=postpone_s)
    track.replies_seen = len(replies)
    fresh_agent = agent if agent is not None and agent.received_at >= track.sent_at else None
    agent_word = fresh_agent.state if fresh_agent is not None else None
    differs = disagreement(agent_word, signal)
    if differs is not None:
        track.disagreement = differs
    agent_off = agent_word in ("off", "offline")
    if agent_off and fresh_agent is not None:
        if signal is None or signal.says in (None, "off"):
            return Step("done", "off", None, fresh_agent.received_at)
    elif not track.has_agent:
        if signal is not None and signal.says == "off":
            return Step("done", "off", None, signal.at)
        if not track.has_second:
            return Step("done", "non-compliant", "no-agent")
    if now < track.deadline:
        return WAIT
    if not agent_off and signal is not None and signal.says == "off":
        track.disagreement = track.disagreement or (
            f"the agent did not report off, but {signal.detail}"
        )
        return Step("done", "off", None, signal.at)
    if track.attempts <= retries and track.has_agent and not agent_off:
        return RESEND
    if track.postponed:
        return Step("done", "non-compliant", "user-active")
    if not track.has_agent:
        return Step("done", "non-compliant", "no-agent")
    return Step("done", "non-compliant", "did-not-go-off")
