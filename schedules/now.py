"""``gronkoll shutdown now``: shut a group, site or device down at once and say what was sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from gronkoll.commands import Command, command_topic
from gronkoll.runtime import Runtime
from gronkoll.schedules.agent_watch import AgentWatch
from gronkoll.schedules.enforce import EnforceContext, RunSummary, run_shutdown
from gronkoll.schedules.targets import selection_targets
from gronkoll.settings import Settings

EXIT_NON_COMPLIANT = 1


def _now() -> datetime:
    return datetime.now(UTC)


def shutdown_now(
    settings: Settings,
    *,
    group: str | None,
    site: str | None,
    device: str | None,
    dry_run: bool,
    out: Callable[[str], None],
    clock: Callable[[], datetime] = _now,
) -> int:
    """Run a shutdown of the selection now; 0 when every machine went off (or a dry run)."""
    from gronkoll.schedules.publish import CommandPublisher, broker_access

    targets = selection_targets(settings, group=group, site=site, device=device)
    if not targets.devices:
        out("No computers (kind pc) in that selection: nothing to do.")
        return 0
    with Runtime(settings) as runtime:
        ctx = EnforceContext(
            settings=settings,
            state=runtime.state,
            store=runtime.store,
            clock=clock,
            sender=None,
            watch=lambda: AgentWatch(broker_access(settings), clock=clock),
            actor="cli",
            on_sent=lambda cmds: _print_sent(cmds, out, dry_run=False),
        )
        if dry_run:
            run = run_shutdown(ctx, targets, planned_at=clock())
            _print_sent(run.commands, out, dry_run=True)
            return 0
        with CommandPublisher.from_settings(settings) as publisher:
            ctx.sender = publisher
            run = run_shutdown(ctx, targets, planned_at=clock())
    return _print_results(run, out, settings)


def _print_sent(cmds: Sequence[Command], out: Callable[[str], None], *, dry_run: bool) -> None:
    verb = "would send" if dry_run else "sent"
    for cmd in cmds:
        out(
            f"{verb} {cmd.action} to {cmd.device} (site {cmd.site}) on "
            f"{command_topic(cmd.site, cmd.device)}: command {cmd.id}, expires "
            f"{cmd.expires_at.isoformat()}"
        )


def _print_results(run: RunSummary, out: Callable[[str], None], settings: Settings) -> int:
    failed = 0
    for r in run.results:
        if r.outcome == "off" and r.off_at is not None:
            out(
                f"{r.device}: off at {r.off_at.astimezone(settings.tz).isoformat(timespec='seconds')}"
            )
        elif r.outcome == "non-compliant":
            failed += 1
            out(f"{r.device}: non-compliant ({r.reason})")
        else:
            out(f"{r.device}: {r.outcome}")
    out(f"run {run.run_id}: {len(run.results)} computers, {failed} non-compliant (gronkoll audit)")
    return EXIT_NON_COMPLIANT if failed else 0
