"""Is someone logged in, and how long since the last input? One small interface, per system.

The agent asks a `PresenceSource` before it warns, postpones or skips a shutdown. It learns
whether a user is logged in and the seconds since their last input, never who they are
(DESIGN decision 8). The sources:

- ``loginctl`` (Linux with systemd-logind): user sessions, and their ``IdleHint`` and
  ``IdleSinceHint`` (microseconds since the epoch), which desktops such as GNOME set;
  systemd's org.freedesktop.login1 documentation describes both properties.
- ``who`` (any Unix): ``who -u`` lists logged-in users with the idle time of their terminal
  (``.`` for active in the last minute, ``old`` for over a day, else ``HH:MM``).
- ``windows``: ``query user`` lists sessions with an IDLE TIME column (``none`` or ``.``, a
  number of minutes, ``H:MM`` or ``D+H:MM``); without query.exe (Home editions),
  ``GetLastInputInfo`` (user32) gives the last input of the agent's own session.
- ``file``: a JSON file ``{"user_present": true, "idle_s": 12}`` another program writes
  (thin clients, kiosk software, the tests).
- ``none``: no one ever logs in (a lab's image server, an information screen).

A source that fails says so (`Presence.error`); the agent then counts no user as present and
logs the reason once.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

Run = Callable[[list[str]], str]


@dataclass(frozen=True)
class Presence:
    """Whether a user is logged in and seconds since the last input (None: not known)."""

    user_present: bool
    idle_s: float | None = None
    error: str | None = None


class PresenceSource(Protocol):
    """Something that can tell whether a user is here."""

    def sample(self) -> Presence:
        """The presence now."""
        ...


def run_text(args: list[str]) -> str:
    """Run a command, return its standard output; OSError or CalledProcessError on failure."""
    return subprocess.run(  # noqa: S603 (fixed system tools, no shell)
        args, capture_output=True, text=True, check=True, timeout=10
    ).stdout


def _failed(what: str, err: Exception) -> Presence:
    return Presence(user_present=False, error=f"{what}: {err}")


# -- loginctl ---------------------------------------------------------------------------------
class LoginctlPresence:
    """User sessions and idle hints from systemd-logind."""

    def __init__(self, run: Run = run_text, clock: Callable[[], float] = time.time) -> None:
        self._run, self._clock = run, clock

    def sample(self) -> Presence:
        try:
            sessions = [
                line.split()[0]
                for line in self._run(["loginctl", "list-sessions", "--no-legend"]).splitlines()
                if line.strip()
            ]
            shows = [
                self._run(
                    ["loginctl", "show-session", s, "-p", "Class", "-p", "IdleHint", "-p"]
                    + ["IdleSinceHint"]
                )
                for s in sessions
            ]
        except (OSError, subprocess.SubprocessError) as err:
            return _failed("loginctl", err)
        return presence_from_loginctl(shows, self._clock())


def presence_from_loginctl(shows: list[str], now_s: float) -> Presence:
    """Presence from `loginctl show-session` outputs (key=value lines), one per session."""
    idle: list[float] = []
    for text in shows:
        props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if props.get("Class") != "user":
            continue  # greeters, background sessions: nobody is logged in there
        if props.get("IdleHint") == "yes" and props.get("IdleSinceHint", "0") not in ("", "0"):
            idle.append(max(0.0, now_s - int(props["IdleSinceHint"]) / 1e6))
        else:
            idle.append(0.0)  # not idle by the session's own word
    if not idle:
        return Presence(user_present=False)
    return Presence(user_present=True, idle_s=min(idle))


# -- who -------------------------------------------------------------------------------------
class WhoPresence:
    """Logged-in users and terminal idle times from `who -u`."""

    def __init__(self, run: Run = run_text) -> None:
        self._run = run

    def sample(self) -> Presence:
        try:
            return presence_from_who(self._run(["who", "-u"]))
        except (OSError, subprocess.SubprocessError) as err:
            return _failed("who", err)


def presence_from_who(text: str) -> Presence:
    """Presence from `who -u` output (NAME LINE DATE TIME IDLE PID [(HOST)]): any line is a
    logged-in user; the idle time is the field before the process id."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return Presence(user_present=False)
    idle: list[float] = []
    for line in lines:
        fields = re.sub(r"\s*\(.*\)\s*$", "", line).split()
        if len(fields) < 3 or not fields[-1].isdigit():
            continue
        value = fields[-2]
        if value == ".":
            idle.append(0.0)
        elif value == "old":
            idle.append(86_400.0)
        elif re.fullmatch(r"\d{1,2}:\d{2}", value):
            hours, minutes = value.split(":")
            idle.append(int(hours) * 3600.0 + int(minutes) * 60.0)
    return Presence(user_present=True, idle_s=min(idle) if idle else None)


# -- Windows ---------------------------------------------------------------------------------
class WindowsPresence:
    """Sessions and idle times from `query user`, else the last input of our own session."""

    def __init__(self, run: Run = run_text) -> None:
        self._run = run

    def sample(self) -> Presence:
        try:
            return presence_from_query_user(self._run(["query", "user"]))
        except FileNotFoundError:
            return last_input_presence()
        except subprocess.CalledProcessError as err:
            if err.returncode == 1 and not (err.stdout or "").strip():
                return Presence(user_present=False)  # "No User exists for *"
            return _failed("query user", err)
        except (OSError, subprocess.SubprocessError) as err:
            return _failed("query user", err)


_IDLE_TIME = re.compile(r"^(?:(\d+)\+)?(?:(\d+):)?(\d+)$")


def presence_from_query_user(text: str) -> Presence:
    """Presence from `query user` output: its IDLE TIME column, for active sessions."""
    lines = [line for line in text.splitlines() if line.strip()]
    idle: list[float] = []
    for line in lines[1:]:  # the first line is the header
        fields = line.split()
        if "Active" not in fields and "Aktiv" not in fields:
            continue  # a disconnected session: its user is not at the computer
        at = fields.index("Active") if "Active" in fields else fields.index("Aktiv")
        value = fields[at + 1] if at + 1 < len(fields) else "."
        m = _IDLE_TIME.match(value)
        if m is None:  # "none" or "."
            idle.append(0.0)
            continue
        days, hours, minutes = (int(g) if g else 0 for g in m.groups())
        idle.append(days * 86_400.0 + hours * 3600.0 + minutes * 60.0)
    if not idle:
        return Presence(user_present=False)
    return Presence(user_present=True, idle_s=min(idle))


class _LastInputInfo(ctypes.Structure):
    _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]


def last_input_presence() -> Presence:
    """The agent's own session's last input, from GetLastInputInfo (Windows only)."""
    if sys.platform != "win32":
        return Presence(user_present=False, error="GetLastInputInfo is only on Windows")
    info = _LastInputInfo()
    info.cbSize = ctypes.sizeof(info)
    windll = ctypes.windll  # type: ignore[attr-defined,unused-ignore]
    if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
        return Presence(user_present=False, error="GetLastInputInfo failed")
    millis = (windll.kernel32.GetTickCount() - info.dwTime) & 0xFFFFFFFF
    return Presence(user_present=True, idle_s=millis / 1000)


# -- file and none ---------------------------------------------------------------------------
class FilePresence:
    """Presence another program writes as JSON: {"user_present": bool, "idle_s": number}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def sample(self) -> Presence:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Presence(user_present=False)
        except (OSError, ValueError) as err:
            return _failed(str(self.path), err)
        if not isinstance(data, dict) or not isinstance(data.get("user_present"), bool):
            return _failed(str(self.path), ValueError("expected user_present true or false"))
        idle = data.get("idle_s")
        if isinstance(idle, bool) or not isinstance(idle, int | float):
            idle = None
        return Presence(user_present=data["user_present"], idle_s=idle)


class NoUsers:
    """A computer nobody logs in to."""

    def sample(self) -> Presence:
        return Presence(user_present=False)


def presence_source(kind: str, idle_file: Path | None = None) -> PresenceSource:
    """The presence source for an agent config's idle_source ('auto' picks by system)."""
    if kind == "auto":
        if sys.platform == "win32":
            kind = "windows"
        else:
            kind = "loginctl" if shutil.which("loginctl") else "who"
    if kind == "loginctl":
        return LoginctlPresence()
    if kind == "who":
        return WhoPresence()
    if kind == "windows":
        return WindowsPresence()
    if kind == "file" and idle_file is not None:
        return FilePresence(idle_file)
    return NoUsers()
