"""InfluxDB line protocol for Gronkoll's schema: one batch of the energy engine in, lines out.

The schema (docs/influxdb.md) is a contract with Grafana users who query it directly:

* ``reading``: one point per (device, time), tags device, group, kind, site; one float field
  per accepted reading field (``power_w``, ``energy_wh_total``, ``state`` as its code, ...).
* ``rejected``: the same shape for readings the engine refused, plus a string field reason.
* ``energy``: one point per (quantity, device, UTC hour) at the hour's start, tags device,
  group, kind, quantity and site (left out for a device another meter measures); field ``wh``
  is the device's cumulative energy in that hour so far, so a rewrite replaces the point.
* ``event``: tags device and kind, string field ``detail``.
* ``gronkoll_spool``: the spool's own gauges, tag host.

Tags are written sorted by key, timestamps in ms (the writers send precision=ms). Escaping
follows the line-protocol reference: commas, equals signs and spaces in tag keys, tag values
and field keys; double quotes and backslashes in string field values; commas and spaces in
measurement names. Every number is written as a float so a field never changes type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gronkoll.energy import MS_PER_HOUR, REJECTED, Batch
from gronkoll.stores.base import UNGROUPED, Attribution

#: (quantity, device, UTC hour index) -> the device's cumulative Wh in that hour
TotalsByHour = Mapping[tuple[str, str, int], float]

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " "})


def escape_key(text: str) -> str:
    """A tag key, tag value or field key, escaped for line protocol."""
    return text.translate(_KEY_ESCAPES)


def string_field(text: str) -> str:
    """A string field value, quoted and escaped for line protocol."""
    clean = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{clean}"'


def tag_set(tags: Mapping[str, str | None]) -> str:
    """Tags sorted by key as ``,k=v,...``; tags without a value are left out."""
    return "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v is not None and v
    )


@dataclass(frozen=True, slots=True)
class Encoded:
    """One batch as line protocol: the body and what it holds."""

    body: bytes
    points: int
    readings: int


class LineEncoder:
    """Encodes engine batches as lines, caching each series' and device's tag prefix."""

    def __init__(
        self, series_name: Callable[[int], tuple[str, str]], sites: Mapping[str, str]
    ) -> None:
        """``series_name`` maps a series id to (device, field); ``sites`` gives each device's
        own site (an Attribution leaves it out for sub-metered devices)."""
        self._series_name = series_name
        self._sites = sites
        # series id -> (device, "reading,<tags>", "rejected,<tags>", "<escaped field key>=")
        self._series: dict[int, tuple[str, str, str, str]] = {}
        self._energy: dict[tuple[str, str], tuple[Attribution, str]] = {}

    def _series_info(
        self, sid: int, attribution: Mapping[str, Attribution]
    ) -> tuple[str, str, str, str]:
        info = self._series.get(sid)
        if info is None:
            device, field = self._series_name(sid)
            a = attribution[device]
            tags = tag_set(
                {
                    "device": device,
                    "group": a.group or UNGROUPED,
                    "kind": a.kind,
                    "site": self._sites.get(device, a.site),
                }
            )
            info = (device, f"reading{tags}", f"rejected{tags}", f"{escape_key(field)}=")
            self._series[sid] = info
        return info

    def encode(
        self, batch: Batch, attribution: Mapping[str, Attribution], totals: TotalsByHour
    ) -> Encoded:
        """The batch's readings, rejected readings, energy hours and events as lines."""
        lines: list[str] = []
        readings = self._readings(batch, attribution, lines)
        lines.extend(energy_lines(batch, attribution, totals, self._energy))
        lines.extend(
            f"event{tag_set({'device': d, 'kind': k})} detail={string_field(x)} {t}"
            for d, t, k, x in batch.events
        )
        body = "\n".join(lines).encode()
        return Encoded(body=body, points=len(lines), readings=readings)

    def _readings(
        self, batch: Batch, attribution: Mapping[str, Attribution], lines: list[str]
    ) -> int:
        accepted: dict[tuple[str, int], list[str]] = {}
        refused: dict[tuple[str, int], tuple[str, list[str]]] = {}
        info, isfinite, count = self._series, math.isfinite, 0
        for sid, t, value, _t0, _wh, flag in batch.rows:
            series = info.get(sid) or self._series_info(sid, attribution)
            if not isfinite(value):
                continue
            count += 1
            field = f"{series[3]}{value!r}"  # a number without the i suffix is a float
            if flag == REJECTED:
                refused.setdefault((series[0], t), (series[2], []))[1].append(field)
                continue
            key = (series[1], t)
            fields = accepted.get(key)
            if fields is None:
                accepted[key] = [field]
            else:
                fields.append(field)
        lines += [
            f"{prefix} {fields[0] if len(fields) == 1 else ','.join(fields)} {t}"
            for (prefix, t), fields in accepted.items()
        ]
        if refused:
            reasons: dict[tuple[str, int], list[str]] = {}
            for device, t, kind, detail in batch.events:
                if kind == "rejected":
                    reasons.setdefault((device, t), []).append(detail)
            for (device, t), (prefix, fields) in refused.items():
                reason = string_field("; ".join(reasons.get((device, t), ["rejected"])))
                lines.append(f"{prefix} {','.join(fields)},reason={reason} {t}")
        return count


def energy_prefix(quantity: str, device: str, a: Attribution) -> str:
    """``energy,<tags>`` of a device's energy points."""
    tags = {"device": device, "group": a.group or UNGROUPED, "kind": a.kind, "quantity": quantity}
    return f"energy{tag_set({**tags, 'site': a.site})}"


def energy_lines(
    batch: Batch,
    attribution: Mapping[str, Attribution],
    totals: TotalsByHour,
    prefixes: dict[tuple[str, str], tuple[Attribution, str]] | None = None,
) -> list[str]:
    """One ``energy`` point per (quantity, device, hour) the batch touched, at its total;
    ``prefixes`` caches each device's tags between batches."""
    cache = {} if prefixes is None else prefixes
    out = []
    for (quantity, device), hours in batch.hourly.items():
        a = attribution[device]
        cached = cache.get((quantity, device))
        if cached is None or cached[0] is not a:
            cached = cache[(quantity, device)] = (a, energy_prefix(quantity, device, a))
        prefix = cached[1]
        out += [
            f"{prefix} wh={float(totals[(quantity, device, h)])!r} {h * MS_PER_HOUR}" for h in hours
        ]
    return out


def spool_line(
    host: str, *, entries: int, size_bytes: int, dropped_total: int, oldest_age_s: float, t_ms: int
) -> str:
    """The spool's own gauges as one ``gronkoll_spool`` point."""
    return (
        f"gronkoll_spool{tag_set({'host': host})} entries={float(entries)!r},"
        f"bytes={float(size_bytes)!r},dropped_total={float(dropped_total)!r},"
        f"oldest_age_s={float(oldest_age_s)!r} {t_ms}"
    )
