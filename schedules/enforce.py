"""One shutdown run: choose the computers, send signed commands (or only look), verify, audit.

`run_policy` is what the scheduler calls when a policy fires; `gronkoll shutdown now` calls
`run_shutdown` with the computers it names. A run never stops for one machine: each ends
with a result (off, already off, non-compliant with a reason; in audit-only mode on, off or
unknown), and every command, reply and verdict is written to the audit log.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from gronkoll.commands import Command, new_command
from gronkoll.errors import InputError
from gronkoll.policies import Targets, policy_targets
from gronkoll.savings import close_intervals
from gronkoll.schedules.agent_watch import AgentWatch
from gronkoll.schedules.journal import Journal
from gronkoll.schedules.observe import observed
from gronkoll.schedules.signals import SecondSignals, Signal
from gronkoll.schedules.verify import Tracking, step
from gronkoll.settings import Device, Settings
from gronkoll.shutdown_results import ShutdownResult
from gronkoll.statedb import StateDB
from gronkoll.stores.base import TimeSeriesStore

log = logging.getLogger(__name__)
RunAction = Literal["shutdown", "wake"]


class Sender(Protocol):
    """What sends signed commands: gronkoll.schedules.publish.CommandPublisher."""

    def publish_all(self, cmds: Sequence[Command]) -> dict[str, str]: ...


@dataclass(kw_only=True)
class EnforceContext:
    """What a run needs; tests pass their own clock and short waits."""

    settings: Settings
    state: StateDB
    store: TimeSeriesStore
    clock: Callable[[], datetime]
    sender: Sender | None  # None: a dry run, nothing is sent
    watch: Callable[[], AgentWatch] | None  # opens an MQTT watch of the agents
    actor: str = "scheduler"
    poll_s: float = 0.5
    overrides: Callable[[datetime], Mapping[str, str]] = lambda _at: {}
    on_sent: Callable[[list[Command]], None] | None = None  # told of each batch sent
    # Sends Wake-on-LAN magic packets to computers; returns device id -> why it failed.
    waker: Callable[[Sequence[Device]], Mapping[str, str]] | None = None


@dataclass(kw_only=True)
class RunSummary:
    """What a run did: its id, the commands sent and each machine's result."""

    run_id: str
    policy: str | None
    planned_at: datetime
    audit_only: bool
    dry_run: bool
    commands: list[Command] = field(default_factory=list)
    results: list[ShutdownResult] = field(default_factory=list)


def run_policy(
    ctx: EnforceContext,
    policy_name: str,
    planned_at_utc: datetime,
    *,
    action: RunAction = "shutdown",
) -> RunSummary:
    """Run one firing of a policy: shut its computers down (or, audit-only, look) and verify."""
    policy = ctx.settings.shutdown.policy(policy_name)
    if policy is None:
        raise InputError(f"no shutdown policy named {policy_name!r}")
    targets = policy_targets(ctx.settings, policy, ctx.overrides(planned_at_utc))
    if action == "wake":
        return _wake(ctx, policy, targets, planned_at_utc)
    return run_shutdown(
        ctx, targets, policy=policy, planned_at=planned_at_utc, audit_only=policy.audit_only
    )


def run_shutdown(
    ctx: EnforceContext,
    targets: Targets,
    *,
    policy: Any = None,
    planned_at: datetime,
    audit_only: bool = False,
) -> RunSummary:
    """Shut the targets down now and verify each; exempt ones are recorded as such."""
    settings = ctx.settings
    close_intervals(ctx.state, ctx.store, settings, now=ctx.clock())
    run = RunSummary(
        run_id=uuid.uuid4().hex,
        policy=getattr(policy, "name", None),
        planned_at=planned_at,
        audit_only=audit_only,
        dry_run=ctx.sender is None,
    )
    if ctx.sender is None:
        run.commands = _commands(ctx, targets.devices, policy, ctx.clock())
        return run
    journal = Journal(ctx, run)
    for device_id, why in sorted(targets.exempt.items()):
        journal.result(settings.device(device_id), "non-compliant", "exempt", note=why)
    if not targets.devices:
        journal.flush()
        return run
    signals = SecondSignals(settings, ctx.store, ctx.state)
    if ctx.watch is None:
        raise InputError("a shutdown run needs the MQTT broker to watch the agents")
    watch = ctx.watch()
    try:
        watch.ready()
        _run(ctx, run, journal, watch, signals, targets.devices, policy)
    finally:
        watch.close()
        journal.flush()
    return run


def _wake(ctx: EnforceContext, policy: Any, targets: Targets, planned_at: datetime) -> RunSummary:
    """A maintenance window opens: wake the policy's computers; each packet is audited."""
    run = RunSummary(
        run_id=uuid.uuid4().hex,
        policy=policy.name,
        planned_at=planned_at,
        audit_only=policy.audit_only,
        dry_run=ctx.waker is None,
    )
    journal = Journal(ctx, run)
    if ctx.waker is None or policy.audit_only:
        failures: Mapping[str, str] = {}
    else:
        failures = ctx.waker(targets.devices)
    for d in targets.devices:
        why = failures.get(d.id)
        outcome = "skipped" if run.dry_run or run.audit_only else ("failed" if why else "sent")
        journal.audit(action="wake", device=d.id, outcome=outcome, reason=why)
    journal.flush()
    return run


def _commands(
    ctx: EnforceContext, devices: Sequence[Device], policy: Any, now: datetime
) -> list[Command]:
    """One new signed-to-be shutdown command per machine, with the policy's user options."""
    ttl_s = ctx.settings.shutdown.command_ttl_s
    options: dict[str, Any] = {}
    if policy is not None:
        options = {
            "policy": policy.name,
            "warn_minutes": policy.warn_minutes,
            "allow_postpone": policy.allow_postpone,
            "postpone_minutes": policy.postpone_minutes,
            "skip_if_active_minutes": policy.skip_if_active_minutes,
        }
    return [new_command(d.id, d.site, "shutdown", now=now, ttl_s=ttl_s, **options) for d in devices]


def _run(
    ctx: EnforceContext,
    run: RunSummary,
    journal: Journal,
    watch: AgentWatch,
    signals: SecondSignals,
    devices: Sequence[Device],
    policy: Any,
) -> None:
    states = watch.states()
    stored = ctx.store.latest("state")
    if run.audit_only:
        for d in devices:
            said, source = observed(d, states.get(d.id), stored.get(d.id), signals)
            journal.result(d, said, None, note=source)
        return
    now = ctx.clock()
    todo = []
    for d in devices:
        agent = states.get(d.id)
        if agent is not None and agent.state in ("off", "offline"):
            journal.result(d, "already-off", None, note=f"the agent's state was {agent.state}")
        else:
            todo.append(d)
    shutdown = ctx.settings.shutdown
    tracks: dict[str, Tracking] = {}
    by_id = {d.id: d for d in devices}
    for cmd in _send(ctx, journal, todo, policy, now):
        d = by_id[cmd.device]
        tracks[d.id] = Tracking(
            device=d.id,
            has_agent=d.id in states or d.id in stored,
            has_second=signals.has_signal(d),
            command=cmd,
            sent_at=now,
            deadline=_deadline(ctx, cmd, now),
        )
    postpone_s = 60.0 * (getattr(policy, "postpone_minutes", None) or 0)
    seen, next_full = 0, 0.0
    while tracks:
        # Every poll_s every machine is looked at (deadlines, plugs, SNMP); in between only
        # those an MQTT message was about, so 5,000 replies cost 5,000 looks, not 25 million.
        now = ctx.clock()
        changed = watch.take_changed()
        if time.monotonic() >= next_full:
            next_full = time.monotonic() + ctx.poll_s
            ids = list(tracks)
        else:
            ids = [i for i in changed if i in tracks]
        oldest = min(tracks[i].sent_at for i in ids) if ids else now
        found = signals.read([by_id[i] for i in ids], oldest)
        resend: list[Device] = []
        for device_id in ids:
            track = tracks[device_id]
            signal = _fresh(found.get(device_id), track.sent_at)
            agent = watch.state(device_id)
            replies = watch.replies(track.command.id) if track.command else []
            for reply in replies[track.replies_seen :]:
                journal.audit(
                    action="reply",
                    device=device_id,
                    command_id=reply.command,
                    outcome=reply.outcome,
                    reason=reply.reason,
                )
            verdict = step(
                track,
                agent=agent,
                replies=replies,
                signal=signal,
                now=now,
                retries=shutdown.retries,
                postpone_s=postpone_s,
            )
            if verdict.kind == "resend":
                resend.append(by_id[device_id])
            elif verdict.kind == "done":
                del tracks[device_id]
                journal.verdict(by_id[device_id], track, verdict, agent, signal)
        for cmd in _send(ctx, journal, resend, policy, now):
            track = tracks[cmd.device]
            track.command, track.sent_at, track.replies_seen = cmd, now, 0
            track.attempts += 1
            track.deadline = _deadline(ctx, cmd, now)
        if tracks:
            seen = watch.wait(max(0.0, next_full - time.monotonic()), seen)


def _deadline(ctx: EnforceContext, cmd: Command, sent_at: datetime) -> datetime:
    """When a machine must have gone off: a logged-in user is first warned warn_minutes."""
    warn_s = 60 * cmd.warn_minutes
    return sent_at + timedelta(seconds=ctx.settings.shutdown.verify_deadline_s + warn_s)


def _send(
    ctx: EnforceContext, journal: Journal, devices: Sequence[Device], policy: Any, now: datetime
) -> list[Command]:
    """Publish one command per machine; every command is audited, sent or not."""
    if not devices or ctx.sender is None:
        return []
    cmds = _commands(ctx, devices, policy, now)
    failures = ctx.sender.publish_all(cmds)
    for cmd in cmds:
        why = failures.get(cmd.id)
        journal.audit(
            action="shutdown",
            device=cmd.device,
            command_id=cmd.id,
            outcome="failed" if why else "sent",
            reason=why,
            detail={"expires_at": cmd.expires_at.isoformat(), "site": cmd.site},
        )
    journal.run.commands.extend(cmds)
    if ctx.on_sent is not None:
        ctx.on_sent(cmds)
    return cmds


def _fresh(signal: Signal | None, since: datetime) -> Signal | None:
    if signal is None or signal.at is None or signal.at >= since:
        return signal
    return Signal(signal.kind, signal.source, None, None, signal.detail)
