"""The replay guard: command ids and nonces an agent has taken, kept until they expire.

A command is taken once. Its id and nonce are remembered until the command's own expiry,
after which the expiry check rejects it anyway, so the memory stays as small as the commands
in flight. The guard is written to the agent's state file (atomically: a temporary file,
fsync, rename) before the agent acts on a command, so a restart does not reopen the window.

A missing state file is a first start: nothing was taken before. A state file that is
unreadable cannot say what was taken. Then the guard starts empty with a watermark: a command
issued before that moment (plus the clock skew the agent allows, since a command may have
been issued that far ahead of our clock) counts as replayed, because it may have been taken
before the file was lost. Only commands issued afterwards are accepted.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

FILE_VERSION = 1


class ReplayGuard:
    """Remembers command ids and nonces until their expiry; optionally kept in a file."""

    def __init__(self, path: Path | None = None, *, since: datetime | None = None) -> None:
        self.path = path
        self.since = since  # commands issued before this count as seen
        self._expiry: dict[str, float] = {}  # "id:<id>" and "nonce:<nonce>" → expiry (epoch s)

    @classmethod
    def load(cls, path: Path, *, now: datetime, max_skew_s: float = 60.0) -> ReplayGuard:
        """The guard kept in path: empty on a first start, with a watermark when unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["seen"]
            since = data.get("since")
            guard = cls(path, since=datetime.fromisoformat(since) if since else None)
            guard._expiry = {str(k): float(v) for k, v in entries.items()}
        except FileNotFoundError:
            log.info("no replay state in %s yet: a first start", path)
            guard = cls(path)
            guard.save()
            return guard
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.error(
                "replay state %s is unreadable (%s): starting afresh; only commands issued "
                "from now on (%.0f s of clock skew allowed) are taken",
                path,
                err,
                max_skew_s,
            )
        else:
            guard.prune(now)
            return guard
        guard = cls(path, since=now + timedelta(seconds=max_skew_s))
        guard.save()
        return guard

    def seen(self, command_id: str, nonce: str, issued_at: datetime | None = None) -> bool:
        """Whether this id or nonce was taken before (or the command predates the watermark)."""
        return self.why_seen(command_id, nonce, issued_at) is not None

    def why_seen(self, command_id: str, nonce: str, issued_at: datetime | None) -> str | None:
        """Why a command counts as taken before, for the log; None when it does not."""
        if f"id:{command_id}" in self._expiry:
            return f"command {command_id} was taken before"
        if f"nonce:{nonce}" in self._expiry:
            return f"its nonce {nonce} was taken before, by another command"
        if self.since is not None and issued_at is not None and issued_at < self.since:
            return f"issued before {self.since.isoformat()}, when the replay state was lost"
        return None

    def remember(self, command_id: str, nonce: str, expires_at: datetime, *, now: datetime) -> None:
        """Record a taken command until expires_at, forget expired ones, and save."""
        self.prune(now)
        until = expires_at.timestamp()
        self._expiry[f"id:{command_id}"] = until
        self._expiry[f"nonce:{nonce}"] = until
        self.save()

    def prune(self, now: datetime) -> None:
        """Forget what has expired: the expiry check rejects it from now on."""
        t = now.timestamp()
        self._expiry = {k: v for k, v in self._expiry.items() if v > t}

    def __len__(self) -> int:
        return len(self._expiry) // 2

    def save(self) -> None:
        """Write the guard to its file atomically (nothing to do without a file)."""
        if self.path is None:
            return
        data = {
            "v": FILE_VERSION,
            "since": self.since.astimezone(UTC).isoformat() if self.since else None,
            "seen": self._expiry,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
