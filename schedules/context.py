"""Opening what a shutdown run needs: the command publisher, the agents' watch, the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from gronkoll.overrides import exemptions
from gronkoll.runtime import Runtime
from gronkoll.schedules.agent_watch import AgentWatch
from gronkoll.schedules.enforce import EnforceContext
from gronkoll.settings import Settings
from gronkoll.wol import wake_devices


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


@contextmanager
def enforcement(
    settings: Settings,
    runtime: Runtime,
    *,
    clock: Callable[[], datetime] = utc_now,
    actor: str = "scheduler",
    dry_run: bool = False,
    poll_s: float = 0.5,
) -> Iterator[EnforceContext]:
    """An EnforceContext on the configured broker; the publisher is closed afterwards.

    A dry run connects to nothing and sends nothing.
    """
    from gronkoll.schedules.publish import CommandPublisher, broker_access

    ctx = EnforceContext(
        settings=settings,
        state=runtime.state,
        store=runtime.store,
        clock=clock,
        sender=None,
        watch=None if dry_run else (lambda: AgentWatch(broker_access(settings), clock=clock)),
        actor=actor,
        poll_s=poll_s,
        overrides=lambda at: exemptions(runtime.state, settings, at),
        waker=None if dry_run else (lambda ds: wake_devices(ds, settings.shutdown.wol)),
    )
    if dry_run:
        yield ctx
        return
    with CommandPublisher.from_settings(settings) as publisher:
        ctx.sender = publisher
        yield ctx
