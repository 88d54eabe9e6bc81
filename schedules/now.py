"""``gronkoll shutdown now``: shut a group, site or device down at once and say what was sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gronkoll.commands import Command, command_topic
from gronkoll.runtime import Runtime
from gronkoll.schedules.context import enforcement, utc_now
from gronkoll.schedules.enforce import RunSummary, run_shutdown
from gronkoll.schedules.targets import selection_targets
from gronkoll.settings import Settings

EXIT_NON_COMPLIANT = 1


def shutdown_now(
    settings: Settings,
    *,
    group: str | None,
    site: str | None,
    device: str | None,
    dry_run: bool,
    out: Callable[[str], None],
    clock: Callable[[], datetime] = utc_now,
    poll_s: float = 0.5,
) -> int:
    """Run a shutdown of the selection now; 0 when every computer went off (or a dry run)."""
    targets = selection_targets(settings, group=group, site=site, device=device)
    if not targets.devices:
        out("No computers (kind pc) in that selection: nothing to do.")
        return 0
    with (
        Runtime(settings) as runtime,
        enforcement(
            settings, runtime, clock=clock, actor="cli", dry_run=dry_run, poll_s=poll_s
        ) as ctx,
    ):
        ctx.on_sent = lambda cmds: print_sent(cmds, out, dry_run=False)
        run = run_shutdown(ctx, targets, planned_at=clock())
    if dry_run:
        print_sent(run.commands, out, dry_run=True)
        return 0
    return _print_results(run, out, settings)


def print_sent(cmds: Sequence[Command], out: Callable[[str], None], *, dry_run: bool) -> None:
    """One line per command: what goes to whom, on which topic, until when."""
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
            at = r.off_at.astimezone(settings.tz).isoformat(timespec="seconds")
            out(f"{r.device}: off at {at}")
        elif r.outcome == "non-compliant":
            failed += 1
            out(f"{r.device}: non-compliant ({r.reason})")
        else:
            out(f"{r.device}: {r.outcome}")
    out(f"run {run.run_id}: {len(run.results)} computers, {failed} non-compliant (gronkoll audit)")
    return EXIT_NON_COMPLIANT if failed else 0
