"""A command to a computer: its content, and the signed form it travels in.

A command (shut down, cancel a pending shutdown, report after a wake) travels over MQTT as
canonical JSON: keys sorted, no spaces, UTF-8, times in ISO 8601 UTC with ``Z`` and whole
seconds, plus ``"sig"``, the hex HMAC-SHA256 (RFC 2104, FIPS 180-4) of that canonical JSON
without ``sig``, keyed with the site's secret (DESIGN decision 5).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from gronkoll.errors import GronkollError

Action = Literal["shutdown", "cancel", "wake-report"]
ACTIONS: tuple[str, ...] = get_args(Action)
Outcome = Literal["accepted", "rejected", "postponed", "skipped-user-active", "done"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
Reason = Literal[
    "unsigned", "bad-signature", "expired", "not-yet-valid", "replayed", "not-for-me", "malformed"
]
REASONS: tuple[str, ...] = get_args(Reason)

#: Schema version of commands and replies.
VERSION = 1
#: Shortest signing key we accept, in characters (a 128-bit secret written in hex).
MIN_KEY_CHARS = 32
#: A command issued this far in the future is still taken (the two clocks may differ).
DEFAULT_MAX_SKEW_S = 60.0
TOPIC_ROOT = "gronkoll"
#: The keys of a command's signed content (``sig`` comes on top).
FIELDS = (
    "v",
    "id",
    "device",
    "site",
    "action",
    "issued_at",
    "expires_at",
    "nonce",
    "policy",
    "warn_minutes",
    "allow_postpone",
    "postpone_minutes",
    "skip_if_active_minutes",
)


class CommandRejected(GronkollError):
    """A command the agent will not carry out; ``reason`` is one of `REASONS`."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class Command:
    """One command to one computer, as signed and sent."""

    id: str
    device: str
    site: str
    action: Action
    issued_at: datetime
    expires_at: datetime
    nonce: str
    policy: str | None = None
    warn_minutes: int = 10
    allow_postpone: bool = True
    postpone_minutes: int = 30
    skip_if_active_minutes: int | None = None


def new_command(
    device: str,
    site: str,
    action: Action,
    *,
    now: datetime,
    ttl_s: float,
    policy: str | None = None,
    warn_minutes: int = 10,
    allow_postpone: bool = True,
    postpone_minutes: int = 30,
    skip_if_active_minutes: int | None = None,
) -> Command:
    """A new command with a fresh id and nonce, valid from now (whole seconds) for ttl_s."""
    issued = _whole_seconds(now)
    return Command(
        id=uuid.uuid4().hex,
        device=device,
        site=site,
        action=action,
        issued_at=issued,
        expires_at=issued + timedelta(seconds=ttl_s),
        nonce=secrets.token_hex(16),
        policy=policy,
        warn_minutes=warn_minutes,
        allow_postpone=allow_postpone,
        postpone_minutes=postpone_minutes,
        skip_if_active_minutes=skip_if_active_minutes,
    )


# -- encoding ---------------------------------------------------------------------------------
def _whole_seconds(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("command times must be aware datetimes")
    return t.astimezone(UTC).replace(microsecond=0)


def iso_z(t: datetime) -> str:
    """An aware time as ISO 8601 UTC with Z and whole seconds, as commands carry it."""
    return _whole_seconds(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(content: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON object: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def signature(content: Mapping[str, Any], key: bytes) -> str:
    """The hex HMAC-SHA256 of the canonical JSON of content (which holds no ``sig``)."""
    return hmac.new(key, canonical_json(content), hashlib.sha256).hexdigest()


def _content(cmd: Command) -> dict[str, Any]:
    return {
        "v": VERSION,
        "id": cmd.id,
        "device": cmd.device,
        "site": cmd.site,
        "action": cmd.action,
        "issued_at": iso_z(cmd.issued_at),
        "expires_at": iso_z(cmd.expires_at),
        "nonce": cmd.nonce,
        "policy": cmd.policy,
        "warn_minutes": cmd.warn_minutes,
        "allow_postpone": cmd.allow_postpone,
        "postpone_minutes": cmd.postpone_minutes,
        "skip_if_active_minutes": cmd.skip_if_active_minutes,
    }


def encode_command(cmd: Command, key: bytes) -> bytes:
    """The signed message for a command: its canonical JSON with ``sig`` added."""
    content = _content(cmd)
    return canonical_json({**content, "sig": signature(content, key)})
