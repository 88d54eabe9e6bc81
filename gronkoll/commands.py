"""Signed commands to computers: their content, signature, checks, topics and replay guard.

A command (shut down, cancel a pending shutdown, report after a wake) travels over MQTT as
canonical JSON: keys sorted, no spaces, UTF-8, times in ISO 8601 UTC with ``Z`` and whole
seconds, plus ``"sig"``, the hex HMAC-SHA256 (RFC 2104, FIPS 180-4) of that canonical JSON
without ``sig``, keyed with the site's secret. The agent accepts a command only if it is
well formed, signed with its site's key, meant for it, already valid, not expired, and its
id and nonce were never seen before (DESIGN decision 5).

Order of the checks, and so which reason a bad command gets: not JSON, or not an object
(``malformed``); no ``sig`` (``unsigned``); a signature that does not match
(``bad-signature``); then, trusting the content: fields of the wrong shape (``malformed``),
another device (``not-for-me``), issued in the future beyond the allowed clock skew
(``not-yet-valid``), past its expiry (``expired``), an id or nonce seen before
(``replayed``). The signature is checked over the canonical form rebuilt from the parsed
content, and the payload must be that canonical form byte for byte, so one JSON text has one
signature and no re-encoding slips past it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from gronkoll.errors import GronkollError
from gronkoll.replay_guard import ReplayGuard

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

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_SIG = re.compile(r"^[0-9a-f]{64}$")
_TOPIC_LEVEL = re.compile(r"^[^/+#\x00]+$")


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


# -- decoding ---------------------------------------------------------------------------------
def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate key {name!r}")
        out[name] = value
    return out


def decode_command(
    payload: bytes,
    key: bytes,
    *,
    device: str,
    now: datetime,
    seen: ReplayGuard,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> Command:
    """Check a received command and return it; raise CommandRejected with the reason.

    An accepted command is remembered in ``seen`` until it expires, so it is taken once.
    """
    try:
        data = json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as err:
        raise CommandRejected("malformed", f"not a JSON object: {err}") from None
    if not isinstance(data, dict):
        raise CommandRejected("malformed", "not a JSON object")
    sig = data.pop("sig", None)
    if sig is None:
        raise CommandRejected("unsigned", "no sig")
    try:
        expected = signature(data, key)
    except ValueError as err:  # NaN or infinity: no canonical form
        raise CommandRejected("malformed", str(err)) from None
    if not isinstance(sig, str) or not _SIG.match(sig):
        raise CommandRejected("bad-signature", "sig is not 64 lowercase hex digits")
    if not hmac.compare_digest(sig, expected):
        raise CommandRejected("bad-signature", "the HMAC does not match the site's key")
    if canonical_json({**data, "sig": sig}) != payload:
        raise CommandRejected("malformed", "not in canonical form")
    cmd = _command_from(data)
    if cmd.device != device:
        raise CommandRejected("not-for-me", f"for device {cmd.device!r}, this is {device!r}")
    if cmd.issued_at > now + timedelta(seconds=max_skew_s):
        raise CommandRejected("not-yet-valid", f"issued at {iso_z(cmd.issued_at)}")
    if now >= cmd.expires_at:
        raise CommandRejected("expired", f"expired at {iso_z(cmd.expires_at)}")
    why = seen.why_seen(cmd.id, cmd.nonce, cmd.issued_at)
    if why is not None:
        raise CommandRejected("replayed", why)
    seen.remember(cmd.id, cmd.nonce, cmd.expires_at, now=now)
    return cmd


def _command_from(data: dict[str, Any]) -> Command:
    """The command in signed content; CommandRejected('malformed') naming the bad field."""
    expected = set(FIELDS)
    if set(data) != expected:
        missing, extra = sorted(expected - set(data)), sorted(set(data) - expected)
        raise CommandRejected("malformed", f"missing {missing}, unknown {extra}")
    if data["v"] != VERSION or type(data["v"]) is not int:
        raise CommandRejected("malformed", f"v {data['v']!r}: this agent reads version {VERSION}")
    for name in ("id", "nonce"):
        if not isinstance(data[name], str) or not _HEX32.match(data[name]):
            raise CommandRejected("malformed", f"{name}: expected 32 lowercase hex digits")
    for name in ("device", "site"):
        if not isinstance(data[name], str) or not _TOPIC_LEVEL.match(data[name]):
            raise CommandRejected("malformed", f"{name}: expected an id")
    if data["action"] not in ACTIONS:
        raise CommandRejected("malformed", f"action {data['action']!r}: expected {ACTIONS}")
    if data["policy"] is not None and not isinstance(data["policy"], str):
        raise CommandRejected("malformed", "policy: expected text or null")
    for name in ("warn_minutes", "postpone_minutes", "skip_if_active_minutes"):
        value = data[name]
        if value is None and name == "skip_if_active_minutes":
            continue
        if type(value) is not int or value < 0:
            raise CommandRejected("malformed", f"{name}: expected a whole number >= 0")
    if type(data["allow_postpone"]) is not bool:
        raise CommandRejected("malformed", "allow_postpone: expected true or false")
    issued, expires = _time(data, "issued_at"), _time(data, "expires_at")
    if expires <= issued:
        raise CommandRejected("malformed", "expires_at is not after issued_at")
    return Command(
        id=data["id"],
        device=data["device"],
        site=data["site"],
        action=data["action"],
        issued_at=issued,
        expires_at=expires,
        nonce=data["nonce"],
        policy=data["policy"],
        warn_minutes=data["warn_minutes"],
        allow_postpone=data["allow_postpone"],
        postpone_minutes=data["postpone_minutes"],
        skip_if_active_minutes=data["skip_if_active_minutes"],
    )


def _time(data: dict[str, Any], name: str) -> datetime:
    value = data[name]
    if not isinstance(value, str) or not _TIME.match(value):
        raise CommandRejected("malformed", f"{name}: expected YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CommandRejected("malformed", f"{name}: {value!r} is not a date and time") from None


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
