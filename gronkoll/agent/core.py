"""What the agent decides: verify each command, warn, postpone once, skip, shut down, cancel.

`AgentCore` is the agent without its connection: it takes received payloads and the passing
of time (an injected clock) and asks `Effects` to reply, warn, publish its state or shut the
computer down. The MQTT side (runner.py) feeds it from one thread, so it needs no locks.

A shutdown command, once verified:
1. is skipped (reply ``skipped-user-active``) when the command has ``skip_if_active_minutes``
   and a user's last input is more recent than that;
2. else is accepted (reply ``accepted``); with a user logged in and ``warn_minutes`` > 0 the
   user is warned and the shutdown waits that long, else it runs at once;
3. while it waits, a user who creates the postpone file (``gronkoll agent postpone`` does)
   moves it ``postpone_minutes`` later, once, when the command allows it (reply
   ``postponed``); a ``cancel`` command drops it;
4. when it is due, the activity check runs again (a user who kept working is not cut off);
   then the agent publishes ``off``, replies ``done`` and runs the shutdown command.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from gronkoll.agent.presence import Presence, PresenceSource
from gronkoll.commands import Command, CommandRejected, Outcome, decode_command, iso_z
from gronkoll.replay_guard import ReplayGuard

log = logging.getLogger(__name__)

#: While a shutdown waits, the postpone file is looked for this often (seconds).
POSTPONE_POLL_S = 1.0
#: A computer still running this long after its shutdown command ran did not go off (a
#: command that only schedules a shutdown, which someone aborted): the agent reports again.
OFF_HOLD_S = 600.0


class Effects(Protocol):
    """What the agent does in the world; the runner does it over MQTT and with processes."""

    def reply(self, command_id: str | None, outcome: Outcome, reason: str | None) -> None:
        """Answer a command on the reply topic."""

    def publish_state(self, presence: Presence) -> None:
        """Publish the computer's state (retained)."""

    def warn(self, message: str) -> None:
        """Show the logged-in user a message."""

    def shut_down(self, cmd: Command) -> bool:
        """Publish off, reply done, run the shutdown command; False when it failed."""


@dataclass
class Pending:
    """A shutdown waiting for its warning time to pass."""

    cmd: Command
    due: datetime
    postponed: bool = False


class AgentCore:
    """The agent's decisions, driven by payloads and an injected clock."""

    def __init__(
        self,
        *,
        device: str,
        key: bytes,
        guard: ReplayGuard,
        presence: PresenceSource,
        effects: Effects,
        clock: Callable[[], datetime],
        postpone_file: Path,
        state_interval_s: float,
        max_skew_s: float,
        postpone_hint: str = "gronkoll agent postpone",
    ) -> None:
        self.device = device
        self._key = key
        self.guard = guard
        self._presence = presence
        self.effects = effects
        self.clock = clock
        self.postpone_file = postpone_file
        self.state_interval_s = state_interval_s
        self.max_skew_s = max_skew_s
        self.postpone_hint = postpone_hint
        self.pending: Pending | None = None
        self.off_since: datetime | None = None  # the shutdown command ran: stay quiet
        self._next_state: datetime | None = None
        self._presence_error: str | None = None

    # -- input -----------------------------------------------------------------------------
    def on_payload(self, payload: bytes) -> None:
        """Verify and carry out one received command; reject it with its reason otherwise."""
        now = self.clock()
        try:
            cmd = decode_command(
                payload,
                self._key,
                device=self.device,
                now=now,
                seen=self.guard,
                max_skew_s=self.max_skew_s,
            )
        except CommandRejected as err:
            command_id = _claimed_id(payload)
            log.warning("rejected command %s: %s", command_id or "(no id)", err)
            self.effects.reply(command_id, "rejected", str(err))
            return
        log.info("command %s: %s (policy %s)", cmd.id, cmd.action, cmd.policy or "-")
        if cmd.action == "shutdown":
            self._shutdown(cmd, now)
        elif cmd.action == "cancel":
            self._cancel(cmd)
        else:  # wake-report: say how we are, now (evidently running, whatever we said)
            self.off_since = None
            self.publish_state()
            self.effects.reply(cmd.id, "done", "awake")

    @property
    def off(self) -> bool:
        """Whether the shutdown command ran and the computer is going down."""
        return self.off_since is not None

    def on_connected(self) -> None:
        """The broker connection is (back) up: publish the state at once."""
        if not self.off:
            self.publish_state()

    # -- time ------------------------------------------------------------------------------
    def tick(self) -> float:
        """Do what is due now; return the seconds until something may be due next."""
        now = self.clock()
        waits: list[float] = []
        if self.pending is not None:
            self._check_postpone(self.pending, now)
            if now >= self.pending.due:
                pending, self.pending = self.pending, None
                self._run_due(pending.cmd)
            else:
                waits += [POSTPONE_POLL_S, (self.pending.due - now).total_seconds()]
        if self.off_since is not None:
            back_at = self.off_since + timedelta(seconds=OFF_HOLD_S)
            if now < back_at:
                waits.append((back_at - now).total_seconds())
            else:
                log.warning(
                    "the computer is still running %.0f s after its shutdown command ran; "
                    "reporting its state again",
                    (now - self.off_since).total_seconds(),
                )
                self.off_since = None
                self._next_state = None
        if self.off_since is None:
            if self._next_state is None or now >= self._next_state:
                self.publish_state()
            waits.append(((self._next_state or now) - now).total_seconds())
        return max(0.0, min(waits, default=self.state_interval_s))

    def publish_state(self) -> None:
        """Sample presence and publish the state; schedule the next one."""
        self.effects.publish_state(self.sample())
        self._next_state = self.clock() + timedelta(seconds=self.state_interval_s)

    def sample(self) -> Presence:
        """The presence now; a failing source is logged once per distinct error."""
        presence = self._presence.sample()
        if presence.error != self._presence_error and presence.error is not None:
            log.warning("cannot tell whether a user is logged in: %s", presence.error)
        self._presence_error = presence.error
        return presence

    # -- the steps -------------------------------------------------------------------------
    def _shutdown(self, cmd: Command, now: datetime) -> None:
        if self.off_since is not None:  # a retry that crossed our "off" on its way
            self.effects.reply(
                cmd.id, "done", f"already shutting down since {iso_z(self.off_since)}"
            )
            return
        if self.pending is not None:
            self.effects.reply(
                cmd.id, "accepted", f"a shutdown is already pending (command {self.pending.cmd.id})"
            )
            return
        presence = self.sample()
        if self._user_active(cmd, presence):
            return
        if presence.user_present and cmd.warn_minutes > 0:
            due = now + timedelta(minutes=cmd.warn_minutes)
            self.pending = Pending(cmd, due)
            self.postpone_file.unlink(missing_ok=True)  # only a request made after the warning
            self.effects.reply(
                cmd.id, "accepted", f"warned the user; shutting down at {iso_z(due)}"
            )
            self.effects.warn(self._warning(cmd, due, now))
            return
        self.effects.reply(cmd.id, "accepted", None)
        self._run_due(cmd)

    def _user_active(self, cmd: Command, presence: Presence) -> bool:
        """Skip (and say so) when a user's input is more recent than the command allows."""
        limit = cmd.skip_if_active_minutes
        if limit is None or not presence.user_present or presence.idle_s is None:
            return False
        if presence.idle_s >= limit * 60:
            return False
        reason = f"user active {presence.idle_s:.0f} s ago (limit {limit} min)"
        log.info("command %s skipped: %s", cmd.id, reason)
        self.effects.reply(cmd.id, "skipped-user-active", reason)
        return True

    def _check_postpone(self, pending: Pending, now: datetime) -> None:
        if not self.postpone_file.exists():
            return
        self.postpone_file.unlink(missing_ok=True)
        cmd = pending.cmd
        if pending.postponed or not cmd.allow_postpone:
            why = "it was postponed once already" if pending.postponed else "this one cannot be"
            log.info("a postpone request for command %s was refused: %s", cmd.id, why)
            self.effects.warn(
                f"Avstängningen kan inte skjutas upp ({_sv(why)}). "
                f"The shutdown cannot be postponed: {why}."
            )
            return
        pending.due += timedelta(minutes=cmd.postpone_minutes)
        pending.postponed = True
        reason = f"the user postponed it by {cmd.postpone_minutes} min, to {iso_z(pending.due)}"
        log.info("command %s: %s", cmd.id, reason)
        self.effects.reply(cmd.id, "postponed", reason)
        self.effects.warn(self._warning(cmd, pending.due, now, postponed=True))

    def _run_due(self, cmd: Command) -> None:
        if self._user_active(cmd, self.sample()):
            return
        log.warning("command %s: shutting the computer down", cmd.id)
        self.off_since = self.clock()
        if not self.effects.shut_down(cmd):
            self.off_since = None
            self.publish_state()  # still on: say so at once

    def _cancel(self, cmd: Command) -> None:
        if self.pending is None:
            self.effects.reply(cmd.id, "done", "no shutdown was pending")
            return
        cancelled, self.pending = self.pending.cmd, None
        log.info("command %s cancelled the shutdown of command %s", cmd.id, cancelled.id)
        self.effects.reply(cmd.id, "done", f"cancelled the shutdown of command {cancelled.id}")
        self.effects.warn("Avstängningen är avbruten. The shutdown is cancelled.")

    def _warning(
        self, cmd: Command, due: datetime, now: datetime, *, postponed: bool = False
    ) -> str:
        at = due.astimezone().strftime("%H:%M")
        minutes = max(1, round((due - now).total_seconds() / 60))
        sv = f"Datorn stängs av kl. {at} (om {minutes} min). Spara ditt arbete."
        en = f"This computer shuts down at {at} (in {minutes} min). Save your work."
        if cmd.allow_postpone and not postponed:
            how = f"`{self.postpone_hint}` eller skapa filen {self.postpone_file}"
            sv += f" Skjut upp {cmd.postpone_minutes} min en gång: kör {how}."
            how = f"`{self.postpone_hint}` or create the file {self.postpone_file}"
            en += f" To postpone by {cmd.postpone_minutes} min, once: run {how}."
        return f"{sv}\n{en}"


def _sv(why: str) -> str:
    return "den är redan uppskjuten en gång" if "once" in why else "den här får inte det"


def _claimed_id(payload: bytes) -> str | None:
    """The id a rejected command claims (unverified, so only for the reply and the log)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None
