"""Signed commands: canonical form, signature, every rejection reason, the replay guard."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gronkoll.commands import (
    Command,
    CommandRejected,
    command_topic,
    decode_command,
    decode_reply,
    encode_command,
    encode_reply,
    new_command,
    reply_topic,
    state_topic,
)
from gronkoll.replay_guard import ReplayGuard

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2027, 2, 1, 17, 30, tzinfo=UTC)


def a_command(**changes: object) -> Command:
    fields: dict[str, object] = {
        "id": "a" * 32,
        "device": "pc-1",
        "site": "skola1",
        "action": "shutdown",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=10),
        "nonce": "b" * 32,
        "policy": "skolor-kvall",
    }
    fields.update(changes)
    return Command(**fields)  # type: ignore[arg-type]


def decode(payload: bytes, **kw: object) -> Command:
    args: dict[str, object] = {"device": "pc-1", "now": NOW, "seen": ReplayGuard()}
    args.update(kw)
    return decode_command(payload, KEY, **args)  # type: ignore[arg-type]


def reason_of(payload: bytes, **kw: object) -> str:
    with pytest.raises(CommandRejected) as info:
        decode(payload, **kw)
    return info.value.reason


def test_the_canonical_form_and_its_signature_are_as_documented() -> None:
    content = (
        '{"action":"shutdown","allow_postpone":true,"device":"pc-1",'
        '"expires_at":"2027-02-01T17:40:00Z","id":"' + "a" * 32 + '",'
        '"issued_at":"2027-02-01T17:30:00Z","nonce":"' + "b" * 32 + '",'
        '"policy":"skolor-kvall","postpone_minutes":30,"site":"skola1",'
        '"skip_if_active_minutes":null,"v":1,"warn_minutes":10}'
    ).encode()
    sig = hmac.new(KEY, content, hashlib.sha256).hexdigest()
    expected = content[:-1] + b',"sig":"' + sig.encode() + b'"}'
    # "sig" sorts between "postpone_minutes" and "site": the whole message is canonical too
    expected = canonical(json.loads(expected))
    assert encode_command(a_command(), KEY) == expected


def canonical(data: dict[str, object]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def test_a_signed_command_round_trips() -> None:
    cmd = new_command(
        "pc-1", "skola1", "shutdown", now=NOW, ttl_s=600, warn_minutes=5, skip_if_active_minutes=15
    )
    assert len(cmd.id) == 32 and len(cmd.nonce) == 32
    assert decode(encode_command(cmd, KEY)) == cmd


def test_times_are_whole_utc_seconds() -> None:
    local = datetime(2027, 2, 1, 18, 30, 12, 999_000).astimezone()
    cmd = new_command("pc-1", "skola1", "cancel", now=local, ttl_s=60)
    assert cmd.issued_at.tzinfo is UTC and cmd.issued_at.microsecond == 0
    assert b'"issued_at":"' + cmd.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ").encode() in (
        encode_command(cmd, KEY)
    )


def test_unsigned_and_wrongly_signed_commands_are_rejected() -> None:
    payload = encode_command(a_command(), KEY)
    data = json.loads(payload)
    del data["sig"]
    assert reason_of(canonical(data)) == "unsigned"
    assert reason_of(encode_command(a_command(), b"another key of thirty-two chars!")) == (
        "bad-signature"
    )
    data["sig"] = "0" * 64
    assert reason_of(canonical(data)) == "bad-signature"
    data["sig"] = 42
    assert reason_of(canonical(data)) == "bad-signature"


def test_a_changed_field_breaks_the_signature() -> None:
    data = json.loads(encode_command(a_command(), KEY))
    data["expires_at"] = "2027-02-02T17:40:00Z"
    assert reason_of(canonical(data)) == "bad-signature"


def test_time_checks() -> None:
    payload = encode_command(a_command(), KEY)
    assert reason_of(payload, now=NOW + timedelta(minutes=10)) == "expired"
    assert decode(payload, now=NOW + timedelta(minutes=10) - timedelta(seconds=1)).id == "a" * 32
    assert reason_of(payload, now=NOW - timedelta(seconds=61)) == "not-yet-valid"
    assert decode(payload, now=NOW - timedelta(seconds=60)).id == "a" * 32  # clock skew


def test_a_command_for_another_device_is_not_for_me() -> None:
    assert reason_of(encode_command(a_command(), KEY), device="pc-2") == "not-for-me"


def test_replays_by_id_and_by_nonce() -> None:
    guard = ReplayGuard()
    payload = encode_command(a_command(), KEY)
    decode(payload, seen=guard)
    assert reason_of(payload, seen=guard) == "replayed"
    same_nonce = encode_command(a_command(id="c" * 32), KEY)
    with pytest.raises(CommandRejected, match="its nonce b{32} was taken before"):
        decode(same_nonce, seen=guard)
    assert decode(encode_command(a_command(id="c" * 32, nonce="d" * 32), KEY), seen=guard)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"shutdown now", "not JSON"),
        (b"[1, 2]", "not an object"),
    ],
)
def test_garbage_is_malformed(payload: bytes, why: str) -> None:
    assert reason_of(payload) == "malformed", why


def signed(data: dict[str, object]) -> bytes:
    content = {k: v for k, v in data.items() if k != "sig"}
    return canonical({**content, "sig": hmac.new(KEY, canonical(content), "sha256").hexdigest()})


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("action", "reboot"),
        ("id", "not-hex"),
        ("nonce", "ab"),
        ("warn_minutes", -1),
        ("warn_minutes", 1.5),
        ("allow_postpone", 1),
        ("issued_at", "2027-02-01 17:30:00"),
        ("expires_at", "2027-02-01T17:30:00Z"),  # not after issued_at
        ("v", 2),
        ("device", "pc/1"),
        ("extra", 1),
    ],
)
def test_signed_but_malformed_content_is_rejected_naming_the_field(
    change: str, value: object
) -> None:
    data = json.loads(encode_command(a_command(), KEY))
    data[change] = value
    with pytest.raises(CommandRejected) as info:
        decode(signed(data))
    assert info.value.reason == "malformed"
    assert change in str(info.value) or "extra" in str(info.value) or "v " in str(info.value)


def test_a_non_canonical_encoding_of_a_signed_command_is_malformed() -> None:
    payload = encode_command(a_command(), KEY)
    assert reason_of(payload.replace(b",", b", ", 1)) == "malformed"
    assert reason_of(payload.replace(b'"a', b'"\\u0061', 1)) == "malformed"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_byte_change_is_rejected(data: st.DataObject) -> None:
    payload = encode_command(a_command(), KEY)
    i = data.draw(st.integers(0, len(payload) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != payload[i]), label="byte")
    changed = payload[:i] + bytes([byte]) + payload[i + 1 :]
    with pytest.raises(CommandRejected) as info:
        decode(changed)
    assert info.value.reason in {"malformed", "unsigned", "bad-signature"}


@settings(max_examples=100, deadline=None)
@given(
    device=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True),
    policy=st.none() | st.text(max_size=30),
    warn=st.integers(0, 120),
    skip=st.none() | st.integers(0, 600),
    ttl=st.integers(1, 86_400),
)
def test_any_valid_command_round_trips(
    device: str, policy: str | None, warn: int, skip: int | None, ttl: int
) -> None:
    cmd = new_command(
        device,
        "skola1",
        "shutdown",
        now=NOW,
        ttl_s=ttl,
        policy=policy,
        warn_minutes=warn,
        skip_if_active_minutes=skip,
    )
    assert decode(encode_command(cmd, KEY), device=device) == cmd


def test_the_replay_guard_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "agent-state.json"
    guard = ReplayGuard.load(path, now=NOW)
    payload = encode_command(a_command(issued_at=NOW + timedelta(seconds=1)), KEY)
    decode(payload, seen=guard)
    again = ReplayGuard.load(path, now=NOW + timedelta(minutes=1))
    assert reason_of(payload, seen=again, now=NOW + timedelta(minutes=1)) == "replayed"
    assert len(again) == 1


def test_the_replay_guard_forgets_what_has_expired(tmp_path: Path) -> None:
    path = tmp_path / "agent-state.json"
    guard = ReplayGuard.load(path, now=NOW)
    for n in range(3):
        cmd = a_command(id=f"{n:032x}", nonce=f"{n + 100:032x}", issued_at=NOW + timedelta(1))
        guard.remember(cmd.id, cmd.nonce, NOW + timedelta(minutes=n + 1), now=NOW)
    assert len(ReplayGuard.load(path, now=NOW + timedelta(minutes=2))) == 1


def test_a_lost_replay_state_only_accepts_commands_issued_after(tmp_path: Path) -> None:
    path = tmp_path / "agent-state.json"
    path.write_text("{ half a fil", encoding="utf-8")
    guard = ReplayGuard.load(path, now=NOW, max_skew_s=60)
    # issued up to 60 s ahead of our clock, it may have been taken before the file was lost
    old = encode_command(a_command(issued_at=NOW + timedelta(seconds=59)), KEY)
    with pytest.raises(CommandRejected, match="replayed: issued before .* replay state was lost"):
        decode(old, seen=guard)
    fresh = encode_command(
        a_command(id="c" * 32, nonce="d" * 32, issued_at=NOW + timedelta(seconds=60)), KEY
    )
    assert decode(fresh, seen=guard, now=NOW + timedelta(seconds=1)).id == "c" * 32
    later = ReplayGuard.load(path, now=NOW + timedelta(minutes=5))
    assert later.since == NOW + timedelta(seconds=60)  # the watermark is kept


def test_a_first_start_takes_commands_issued_before_it(tmp_path: Path) -> None:
    guard = ReplayGuard.load(tmp_path / "new" / "agent-state.json", now=NOW)
    assert guard.since is None and (tmp_path / "new" / "agent-state.json").exists()
    earlier = encode_command(a_command(issued_at=NOW - timedelta(seconds=5)), KEY)
    assert decode(earlier, seen=guard).id == "a" * 32


def test_topics_and_replies() -> None:
    assert command_topic("skola1", "pc-1") == "gronkoll/cmd/skola1/pc-1"
    assert state_topic("pc-1") == "gronkoll/agent/pc-1/state"
    assert reply_topic("pc-1") == "gronkoll/agent/pc-1/reply"
    raw = encode_reply("a" * 32, "skipped-user-active", "user active 20 s ago", NOW)
    assert json.loads(raw) == {
        "v": 1,
        "command": "a" * 32,
        "outcome": "skipped-user-active",
        "reason": "user active 20 s ago",
        "t": "2027-02-01T17:30:00Z",
    }
    assert decode_reply(raw).outcome == "skipped-user-active"
