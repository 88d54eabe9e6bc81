"""What an agent checks before it obeys a command, and the reason it gives when it refuses.

The agent accepts a command only if it is well formed, signed with its site's key, meant for
it, already valid, not expired, and its id and nonce were never seen before (DESIGN
decision 5).

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

import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gronkoll.command_format import (
    ACTIONS,
    DEFAULT_MAX_SKEW_S,
    FIELDS,
    VERSION,
    Command,
    CommandRejected,
    canonical_json,
    iso_z,
    signature,
)
from gronkoll.replay_guard import ReplayGuard

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_SIG = re.compile(r"^[0-9a-f]{64}$")
_TOPIC_LEVEL = re.compile(r"^[^/+#\x00]+$")


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
