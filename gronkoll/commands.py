"""Signed commands to computers: their content, signature, checks, topics and replies.

A command's content and signed form are in command_format, what an agent checks before it
obeys one in command_checks; this module holds the agent's replies and the topics, and
re-exports the rest, so `from gronkoll.commands import X` serves them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from gronkoll.command_checks import decode_command
from gronkoll.command_format import (
    ACTIONS,
    DEFAULT_MAX_SKEW_S,
    FIELDS,
    MIN_KEY_CHARS,
    OUTCOMES,
    REASONS,
    TOPIC_ROOT,
    VERSION,
    Action,
    Command,
    CommandRejected,
    Outcome,
    Reason,
    canonical_json,
    encode_command,
    iso_z,
    new_command,
    signature,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_SKEW_S",
    "FIELDS",
    "MIN_KEY_CHARS",
    "OUTCOMES",
    "REASONS",
    "TOPIC_ROOT",
    "VERSION",
    "Action",
    "Command",
    "CommandRejected",
    "Outcome",
    "Reason",
    "Reply",
    "canonical_json",
    "command_topic",
    "decode_command",
    "decode_reply",
    "encode_command",
    "encode_reply",
    "iso_z",
    "new_command",
    "reply_topic",
    "signature",
    "state_topic",
]


# -- replies ------------------------------------------------------------------------------------
def encode_reply(command_id: str, outcome: Outcome, reason: str | None, t: datetime) -> bytes:
    """An agent's reply to one command (not signed: the scheduler checks it against the
    agent's state and, where there is one, a second signal)."""
    return json.dumps(
        {"v": VERSION, "command": command_id, "outcome": outcome, "reason": reason, "t": iso_z(t)},
        ensure_ascii=False,
    ).encode("utf-8")


@dataclass(frozen=True, kw_only=True)
class Reply:
    """An agent's reply to a command, as read back."""

    command: str
    outcome: Outcome
    reason: str | None
    t: datetime


def decode_reply(payload: bytes) -> Reply:
    """Read an agent's reply; ValueError when it is not one."""
    data = json.loads(payload.decode("utf-8"))
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError("not a version 1 reply")
    if data.get("outcome") not in OUTCOMES or not isinstance(data.get("command"), str):
        raise ValueError(f"unknown outcome {data.get('outcome')!r}")
    reason = data.get("reason")
    return Reply(
        command=data["command"],
        outcome=data["outcome"],
        reason=reason if isinstance(reason, str) else None,
        t=datetime.fromisoformat(data["t"]),
    )


# -- topics -----------------------------------------------------------------------------------
def command_topic(site: str, device: str) -> str:
    """Where commands for one computer are published (QoS 1, not retained)."""
    return f"{TOPIC_ROOT}/cmd/{site}/{device}"


def state_topic(device: str) -> str:
    """Where an agent publishes its state (retained; last will ``offline``)."""
    return f"{TOPIC_ROOT}/agent/{device}/state"


def reply_topic(device: str) -> str:
    """Where an agent answers each command (QoS 1, not retained)."""
    return f"{TOPIC_ROOT}/agent/{device}/reply"
