"""Who is at the computer: the outputs of loginctl, who and query user, read as presence.

The outputs are written as the tools print them (systemd's loginctl, GNU coreutils' who -u,
Windows' query user); the tools themselves are not on this test machine, or have no users.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gronkoll.agent.presence import (
    FilePresence,
    LoginctlPresence,
    NoUsers,
    Presence,
    WhoPresence,
    WindowsPresence,
    presence_from_loginctl,
    presence_from_query_user,
    presence_from_who,
)

NOW_S = 1_800_000_000.0


def test_loginctl_user_sessions_and_idle_hints() -> None:
    greeter = "Class=greeter\nIdleHint=no\nIdleSinceHint=0\n"
    idle = f"Class=user\nIdleHint=yes\nIdleSinceHint={int((NOW_S - 900) * 1e6)}\n"
    active = "Class=user\nIdleHint=no\nIdleSinceHint=0\n"
    assert presence_from_loginctl([greeter], NOW_S) == Presence(user_present=False)
    assert presence_from_loginctl([greeter, idle], NOW_S) == Presence(True, 900.0)
    assert presence_from_loginctl([idle, active], NOW_S) == Presence(True, 0.0)


def test_loginctl_runs_the_tool_per_session() -> None:
    calls: list[list[str]] = []

    def run(args: list[str]) -> str:
        calls.append(args)
        if args[1] == "list-sessions":
            return "  3 1000 elev seat0 tty2\n"
        return "Class=user\nIdleHint=no\nIdleSinceHint=0\n"

    assert LoginctlPresence(run, lambda: NOW_S).sample() == Presence(True, 0.0)
    assert calls[1][:3] == ["loginctl", "show-session", "3"]


def test_who_idle_column() -> None:
    text = (
        "elev     tty2         2027-02-01 08:02 00:15        1234 (:0)\n"
        "admin    pts/0        2027-02-01 07:40   .          2345 (10.0.0.5)\n"
    )
    assert presence_from_who(text) == Presence(True, 0.0)
    assert presence_from_who(text.splitlines()[0]) == Presence(True, 900.0)
    assert presence_from_who("elev tty2 2027-02-01 08:02  old  1234\n") == Presence(True, 86400.0)
    assert presence_from_who("") == Presence(False)


def test_query_user_idle_time() -> None:
    text = (
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME\n"
        ">elev                  console             1  Active      1:05  2027-02-01 08:00\n"
        " larare                                    2  Disc     1+02:00  2027-01-31 15:00\n"
    )
    assert presence_from_query_user(text) == Presence(True, 3900.0)
    active_now = text.replace("1:05", "none")
    assert presence_from_query_user(active_now) == Presence(True, 0.0)
    assert presence_from_query_user(text.replace("Active", "Disc")) == Presence(False)


def test_windows_without_users_and_failing_tools() -> None:
    def no_user(args: list[str]) -> str:
        raise subprocess.CalledProcessError(1, args, output="", stderr="No User exists for *")

    assert WindowsPresence(no_user).sample() == Presence(False)

    def broken(args: list[str]) -> str:
        raise subprocess.CalledProcessError(5, args, output="x", stderr="")

    sample = WindowsPresence(broken).sample()
    assert not sample.user_present and sample.error and "query user" in sample.error


def test_who_that_cannot_run_says_why() -> None:
    def missing(args: list[str]) -> str:
        raise FileNotFoundError(2, "No such file or directory", args[0])

    sample = WhoPresence(missing).sample()
    assert not sample.user_present and "No such file" in (sample.error or "")


def test_the_presence_file(tmp_path: Path) -> None:
    path = tmp_path / "presence.json"
    source = FilePresence(path)
    assert source.sample() == Presence(False)
    path.write_text(json.dumps({"user_present": True, "idle_s": 42}))
    assert source.sample() == Presence(True, 42)
    path.write_text("{")
    assert source.sample().error is not None
    assert NoUsers().sample() == Presence(False)
