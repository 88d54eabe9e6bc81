"""Walks several table columns of one device, their first rows in one GETBULK together.

A profile's table metrics read a few columns of the same tables (power, energy and current of
each phase or outlet). Walked one by one, each column costs a request and an answer of its
own, and most of a device's first poll is spent so. One GETBULK with every column as a
repeater (RFC 3416 section 4.2.3: each row of the answer holds the next object of every
column) brings the first page of all of them at once; a column longer than that page is
walked on from its last row on its own, and when the combined request fails (tooBig, an
error status, an answer out of order) each column is walked on its own, as before, so that
its own walk reports what is wrong with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gronkoll.collector.snmp import SnmpClient, SnmpTarget, Value
from gronkoll.collector.snmp_values import oid_text, parse_oid
from gronkoll.errors import DeviceError, DeviceUnreachable, SnmpAuthError

#: Most objects one combined page asks for (columns x rows): a page is cut to fewer rows per
#: column rather than grow past this; longer columns go on with their own walks.
MAX_PAGE_OBJECTS = 64
_MAX_REPETITIONS = 25  # as SnmpClient.walk's own pages

Column = dict[str, Value] | BaseException  # a column's objects by OID, or why its walk failed


async def walk_columns(
    client: SnmpClient, target: SnmpTarget, columns: Sequence[str], pages: Sequence[int]
) -> list[Column]:
    """Each column's objects, in the order of columns, or the error its walk met; a device
    that does not answer or refuses the credentials raises, as a single walk does. pages:
    each column's first page (its rows last time plus one, or a guess)."""
    if target.version == "1" or len(columns) < 2:
        return await _each(client, target, columns, pages)
    most = min(max(pages), _MAX_REPETITIONS, MAX_PAGE_OBJECTS // len(columns))
    repetitions = max(1, most)
    try:
        page = await client.bulk(target, columns, repetitions)
    except (DeviceUnreachable, SnmpAuthError):
        raise
    except DeviceError:
        return await _each(client, target, columns, pages)
    roots = [parse_oid(c) for c in columns]
    found: list[dict[str, Value]] = [{} for _ in columns]
    last: list[tuple[int, ...] | None] = [None] * len(columns)
    state = ["open"] * len(columns)  # open, ended (complete) or broken (walk it on its own)
    for position, (name, value) in enumerate(page):
        i = position % len(columns)
        if state[i] != "open":
            continue
        root, previous = roots[i], last[i]
        if value is None or name[: len(root)] != root or len(name) == len(root):
            state[i] = "ended"  # endOfMibView, or past the column: it is complete
        elif previous is not None and name <= previous:
            state[i], found[i], last[i] = "broken", {}, None  # out of order
        else:
            found[i][oid_text(name)] = value
            last[i] = name
    rest = [i for i, s in enumerate(state) if s != "ended"]
    more = await asyncio.gather(
        *(
            client.walk(
                target,
                columns[i],
                first_repetitions=min(repetitions * 2, _MAX_REPETITIONS),
                after=oid_text(previous) if (previous := last[i]) is not None else None,
            )
            for i in rest
        ),
        return_exceptions=True,
    )
    results: list[Column] = list(found)
    for i, walked in zip(rest, more, strict=True):
        results[i] = walked if isinstance(walked, BaseException) else found[i] | walked
    return results


async def _each(
    client: SnmpClient, target: SnmpTarget, columns: Sequence[str], pages: Sequence[int]
) -> list[Column]:
    """Every column walked on its own, concurrently."""
    return await asyncio.gather(
        *(
            client.walk(target, c, first_repetitions=page)
            for c, page in zip(columns, pages, strict=True)
        ),
        return_exceptions=True,
    )
