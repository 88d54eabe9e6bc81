"""What a shutdown run writes: audit records and each machine's result, in batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gronkoll.audit import AuditRecord
from gronkoll.savings import morning_cap
from gronkoll.schedules.agent_watch import AgentState
from gronkoll.schedules.signals import Signal
from gronkoll.schedules.verify import Step, Tracking
from gronkoll.settings import Device
from gronkoll.shutdown_results import ShutdownResult, save

if TYPE_CHECKING:
    from gronkoll.schedules.enforce import EnforceContext, RunSummary

#: Records written to the state database at once: 5,000 machines need a handful of writes.
BATCH = 1000


class Journal:
    """Collects a run's audit records and results and writes them in batches."""

    def __init__(self, ctx: EnforceContext, run: RunSummary) -> None:
        self.ctx = ctx
        self.run = run
        self._audit: list[AuditRecord] = []
        self._results: list[ShutdownResult] = []

    def audit(self, *, action: str, outcome: str, **fields: Any) -> None:
        """Add one audit record of this run, stamped now."""
        self._audit.append(
            AuditRecord(
                t=self.ctx.clock(),
                actor=self.ctx.actor,
                policy=self.run.policy,
                action=action,
                outcome=outcome,
                **fields,
            )
        )
        if len(self._audit) >= BATCH:
            self.flush()

    def result(
        self,
        device: Device | None,
        outcome: str,
        reason: str | None,
        *,
        note: str = "",
        off_at: Any = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one machine's result of this run, and audit it."""
        if device is None:
            return
        settings = self.ctx.settings
        profile = settings.power_profile(device)
        evidence = dict(evidence or {})
        if note:
            evidence.setdefault("note", note)
        result = ShutdownResult(
            run_id=self.run.run_id,
            policy=self.run.policy,
            planned_at=self.run.planned_at,
            night=self.run.planned_at.astimezone(settings.tz).date(),
            device=device.id,
            site=device.site,
            group=device.group,
            audit_only=self.run.audit_only,
            outcome=outcome,
            reason=reason,
            off_at=off_at,
            until_at=morning_cap(off_at, settings) if off_at is not None else None,
            idle_w=profile.idle_w if profile is not None else None,
            off_w=profile.off_w if profile is not None else None,
            evidence=evidence,
        )
        self._results.append(result)
        self.run.results.append(result)
        self.audit(
            action="observe" if self.run.audit_only else "verify",
            device=device.id,
            outcome=outcome,
            reason=reason,
            detail=evidence or None,
        )

    def verdict(
        self,
        device: Device,
        track: Tracking,
        verdict: Step,
        agent: AgentState | None,
        signal: Signal | None,
    ) -> None:
        """Record the verdict of a verified machine with the evidence behind it."""
        evidence: dict[str, Any] = {
            "attempts": track.attempts,
            "agent": agent.state if agent is not None else None,
            "second_signal": signal.detail if signal is not None else None,
        }
        if track.disagreement:
            evidence["disagreement"] = track.disagreement
        if track.notes:
            evidence["replies"] = track.notes
        self.result(
            device,
            verdict.outcome or "non-compliant",
            verdict.reason,
            off_at=verdict.off_at,
            evidence=evidence,
        )
        if track.disagreement:
            self.audit(
                action="verify",
                device=device.id,
                outcome="disagreement",
                reason=track.disagreement,
                command_id=track.command.id if track.command else None,
            )

    def flush(self) -> None:
        """Write what was collected."""
        records, self._audit = self._audit, []
        results, self._results = self._results, []
        self.ctx.state.audit_many(records)
        save(self.ctx.state, results)
