"""The energy rollup rows one batch adds to the SQLite store.

Writing is the collector's hot path (about 500 messages a batch, each batch its own
transaction), so the rows are built with a few dict operations per device and hour, each
day row summed from the hour rows already summed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gronkoll.energy import Hourly
from gronkoll.stores.base import Attribution

QUANTITIES = {"electricity": 0, "heat": 1}

RollupRow = tuple[int, int, int, str, float]  # (quantity, dim, hour or day, key, Wh)


def rollup_rows(
    hourly: Hourly, attribution: Mapping[str, Attribution], local_day: Callable[[int], int]
) -> tuple[list[RollupRow], list[RollupRow]]:
    """A batch's hour and day rollup rows, each (quantity, dim, hour or day, key) once.

    Rows for the device (dim 0) and for the site, group and kind it belongs to (dims 1-3;
    no site where another meter measures the device); each day row sums its key's hour
    rows. Every sum starts at 0.0 and adds in the batch's order, as this code always has,
    so the stored sums are the same to the last bit. The rows are not sorted: sorting cost
    more than it saved the upserts, whose rows all fall in the newest hour or day anyway.
    """
    hour_rows: list[RollupRow] = []
    # (quantity, dim, key, hour) -> Wh: the site, group and kind sums of the batch. One flat
    # dict costs one lookup per device, dim and hour; each key's hours keep their order.
    shared: dict[tuple[int, int, str, int], float] = {}
    for (quantity, device), hours in hourly.items():
        q = QUANTITIES[quantity]
        a = attribution[device]
        for h, wh in hours.items():
            hour_rows.append((q, 0, h, device, wh))
            if a.site is not None:
                shared[(q, 1, a.site, h)] = shared.get((q, 1, a.site, h), 0.0) + wh
            shared[(q, 2, a.group, h)] = shared.get((q, 2, a.group, h), 0.0) + wh
            shared[(q, 3, a.kind, h)] = shared.get((q, 3, a.kind, h), 0.0) + wh
    hour_rows.extend([(q, dim, h, key, wh) for (q, dim, key, h), wh in shared.items()])
    days: dict[tuple[int, int, int, str], float] = {}
    for q, dim, h, key, wh in hour_rows:
        day = (q, dim, local_day(h), key)
        days[day] = days.get(day, 0.0) + wh
    return hour_rows, [(*day, wh) for day, wh in days.items()]
