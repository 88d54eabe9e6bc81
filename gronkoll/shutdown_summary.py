"""The shutdown section in a few lines, as `gronkoll check-config` prints it.

Per policy: when it shuts down (its cron expression, local time), how many computers it
targets and how many of those it leaves on, its calendar, whether it only audits, and its
maintenance windows; then the school calendar's breaks and study days. The signing keys are
counted, never shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gronkoll.policies import policy_targets

if TYPE_CHECKING:
    from gronkoll.settings import Policy, Settings


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def shutdown_lines(settings: Settings) -> list[str]:
    """check-config's lines on the shutdown section; none when it has no policy, break or
    study day."""
    section = settings.shutdown
    lines: list[str] = []
    if section.policies:
        lines.append(
            f"  shutdown policies: {len(section.policies)} (local time "
            f"{settings.municipality.timezone}; signing keys for "
            f"{_count(len(section.signing_keys), 'site')})"
        )
        for policy in section.policies:
            lines += _policy_lines(settings, policy)
    if section.breaks or section.study_days:
        lines.append(
            f"  school calendar: {_count(len(section.breaks), 'break')}, "
            f"{_count(len(section.study_days), 'study day')} (skipped by policies with "
            "calendar se-school, as are Swedish public holidays)"
        )
        for b in section.breaks:
            lines.append(f"    {b.name}: {b.from_} to {b.to}")
        if section.study_days:
            days = ", ".join(str(d) for d in sorted(section.study_days))
            lines.append(f"    study days: {days}")
    return lines


def _policy_lines(settings: Settings, policy: Policy) -> list[str]:
    targets = policy_targets(settings, policy)
    computers = _count(len(targets.devices), "computer")
    if targets.exempt:
        computers += f" (and {len(targets.exempt)} exempt)"
    when = f'shuts down at "{policy.shutdown}"' if policy.shutdown else "no shutdown of its own"
    text = f"    {policy.name}: {when}, {computers}, calendar {policy.calendar}"
    if policy.audit_only:
        text += ", audit only (sends nothing)"
    lines = [text]
    for window in policy.maintenance:
        lines.append(
            f'      maintenance {window.name}: wakes at "{window.wake}", shuts down '
            f"{window.shutdown_after_minutes} min later"
        )
    return lines
