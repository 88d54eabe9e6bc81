"""The rows a device's tables had when last walked, so that later polls read them with one
GET, and what every poll of a profile asks for, worked out once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gronkoll.collector.snmp import FIRST_PAGE
from gronkoll.profiles import Metric, Profile


@dataclass(slots=True)
class RowCache:
    """The row indexes a device's tables had when last walked, so later polls can read those
    rows with one GET instead of a walk per column (a walk brings back a page of values per
    column and costs the agent and us ten times more). Walked again every ``rewalk_every``
    reads, when a row is missing, and after the device failed (``clear``)."""

    rewalk_every: int = 60
    indexes: dict[str, list[str]] | None = None
    reads: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # rows per column, kept over clear()
    # What every poll of one profile and one set of rows asks for, worked out once: the
    # profile with its scalars and columns, and the indexes with the OIDs of their rows.
    plan: tuple[Profile, list[str], list[str]] | None = field(default=None, repr=False)
    oids: tuple[dict[str, list[str]], list[str]] | None = field(default=None, repr=False)

    def clear(self) -> None:
        """Forget the rows: the next read walks."""
        self.indexes = None
        self.reads = 0

    def first_page(self, column: str) -> int:
        """How many rows to ask for in a walk's first GETBULK: those seen last time, plus one
        to see the end of the column."""
        size = self.sizes.get(column)
        return FIRST_PAGE if size is None else size + 1

    def row_oids(self) -> list[str]:
        """The OIDs of every known row (column.index), in the order of ``indexes``."""
        indexes = self.indexes or {}
        if self.oids is None or self.oids[0] is not indexes:
            oids = [f"{column}.{index}" for column, found in indexes.items() for index in found]
            self.oids = (indexes, oids)
        return self.oids[1]


def plan(profile: Profile, rows: RowCache | None) -> tuple[list[str], list[str]]:
    """The profile's scalar OIDs and table columns, sorted; kept in rows for the next poll."""
    if rows is not None and rows.plan is not None and rows.plan[0] is profile:
        return rows.plan[1], rows.plan[2]
    scalars = sorted({oid for m in profile.metrics if not m.table for oid in _oids_of(m)})
    columns = sorted({oid for m in profile.metrics if m.table for oid in _oids_of(m)})
    if rows is not None:
        rows.plan = (profile, scalars, columns)
    return scalars, columns


def _oids_of(metric: Metric) -> Iterable[str]:
    """The metric's object and every object it needs to interpret it."""
    yield metric.oid
    for condition in (*metric.where, *metric.valid_if):
        yield condition.oid
    if metric.scale_digits_oid:
        yield metric.scale_digits_oid
    if metric.scale_exponent:
        yield metric.scale_exponent.oid
    if metric.index_oid:
        yield metric.index_oid
