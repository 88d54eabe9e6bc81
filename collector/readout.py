"""Reads one device through its profile: SNMP values in, readings in SI units out.

Scalars come from one batched GET, table columns from walks that start together in one GETBULK
(snmp_columns.py; each column once however many metrics use it), and later polls read the rows
found with one GET (RowCache). A missing object or a bad value costs that value
only; only an unreachable device or refused credentials stop the read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gronkoll.collector.row_cache import RowCache, plan
from gronkoll.collector.snmp import FIRST_PAGE, SnmpClient, SnmpTarget, Value
from gronkoll.collector.snmp_columns import walk_columns
from gronkoll.errors import DeviceError, DeviceUnreachable, SnmpAuthError
from gronkoll.fields import row_field
from gronkoll.profiles import Condition, Metric, Profile


@dataclass
class Readout:
    """What one read of a device gave: readings, and what it could not give."""

    values: list[tuple[str, float]] = field(default_factory=list)  # (field or row field, SI)
    missing: list[str] = field(default_factory=list)  # objects the device does not have
    problems: list[str] = field(default_factory=list)  # values of the wrong type, errors
    not_measured: list[str] = field(default_factory=list)  # raw values that mean "no value"


def counter_modulus_wh(metric: Metric, decimal_digits: int = 0) -> float | None:
    """Where a counter metric wraps, in Wh: 2**bits x scale, / 10**digits when it has them."""
    modulus = metric.counter_modulus_wh
    if modulus is None:
        return None
    return modulus / 10.0 ** max(decimal_digits, 0)


async def read_device(
    client: SnmpClient, target: SnmpTarget, profile: Profile, *, rows: RowCache | None = None
) -> Readout:
    """Read every metric of the profile from the device; raises only when it cannot talk."""
    readout = Readout()
    scalars, columns = plan(profile, rows)
    walked = None
    if rows is not None and rows.indexes is not None and rows.reads < rows.rewalk_every:
        got, walked = await _get_rows(client, target, scalars, rows, readout)
        rows.reads += 1
    else:
        got = await _get(client, target, scalars, readout)
    if walked is None:
        walked = await _walk(client, target, columns, readout, rows)
        if rows is not None:
            rows.indexes = {column: list(found) for column, found in walked.items()}
            rows.sizes = {column: len(found) for column, found in walked.items()}
            rows.reads = 0
    seen: set[str] = set()
    for metric in profile.metrics:
        reader = _Reader(metric, got, walked, readout)
        for name, value in reader.readings():
            if name not in seen:  # several metrics for one field: the first that gives wins
                seen.add(name)
                readout.values.append((name, value))
    # Metrics sharing an object (a column read as several fields) report it once.
    readout.missing = list(dict.fromkeys(readout.missing))
    readout.problems = list(dict.fromkeys(readout.problems))
    readout.not_measured = list(dict.fromkeys(readout.not_measured))
    return readout


async def _get(
    client: SnmpClient, target: SnmpTarget, oids: list[str], readout: Readout
) -> dict[str, Value]:
    if not oids:
        return {}
    try:
        return await client.get(target, oids)
    except (DeviceUnreachable, SnmpAuthError):
        raise
    except DeviceError as err:
        readout.problems.append(f"GET of {len(oids)} objects failed: {err}")
        return {}


async def _get_rows(
    client: SnmpClient,
    target: SnmpTarget,
    scalars: list[str],
    rows: RowCache,
    readout: Readout,
) -> tuple[dict[str, Value], dict[str, dict[str, Value]] | None]:
    """Scalars and the known rows in one GET; rows None when any row is gone (walk again)."""
    indexes = rows.indexes or {}
    wanted = rows.row_oids()
    got = await _get(client, target, scalars + wanted, readout)
    walked: dict[str, dict[str, Value]] = {}
    at = iter(wanted)  # the row OIDs in the order of indexes
    for column, found in indexes.items():
        values: dict[str, Value] = {}
        for index in found:
            value = got.get(next(at))
            if value is None:
                return got, None
            values[index] = value
        walked[column] = values
    return got, walked


async def _walk(
    client: SnmpClient,
    target: SnmpTarget,
    columns: list[str],
    readout: Readout,
    rows: RowCache | None,
) -> dict[str, dict[str, Value]]:
    """Each column's rows by index (the OID after the column's)."""
    if not columns:
        return {}
    pages = [rows.first_page(c) if rows is not None else FIRST_PAGE for c in columns]
    results = await walk_columns(client, target, columns, pages)
    for result in results:  # a device that cannot talk fails the read, however it showed
        if isinstance(result, DeviceUnreachable | SnmpAuthError):
            raise result
        if isinstance(result, BaseException) and not isinstance(result, DeviceError):
            raise result
    walked: dict[str, dict[str, Value]] = {}
    for column, result in zip(columns, results, strict=True):
        if isinstance(result, BaseException):
            readout.problems.append(f"walk of {column} failed: {result}")
            walked[column] = {}
            continue
        prefix = column + "."
        walked[column] = {
            oid.removeprefix(prefix): value
            for oid, value in result.items()
            if oid.startswith(prefix)
        }
    return walked


class _Reader:
    """Turns one metric's raw values into readings, noting what is missing or unmeasured."""

    def __init__(
        self,
        metric: Metric,
        got: dict[str, Value],
        walked: dict[str, dict[str, Value]],
        readout: Readout,
    ) -> None:
        self.m = metric
        self.got = got
        self.walked = walked
        self.out = readout

    def readings(self) -> list[tuple[str, float]]:
        """(field or row field, value) for this metric."""
        if not self.m.table:
            value = self._scalar()
            return [] if value is None else [(self.m.field, value)]
        rows = self._rows()
        if rows is None:
            return []
        if self.m.total == "none":
            return [(row_field(self.m.field, row), value) for row, value in rows]
        if not rows:
            return []
        if self.m.total == "first":
            return [(self.m.field, rows[0][1])]
        return [(self.m.field, sum(value for _, value in rows))]

    # -- scalars --------------------------------------------------------------------------
    def _scalar(self) -> float | None:
        m = self.m
        if m.oid not in self.got:
            self.out.missing.append(f"{m.object} ({m.oid})")
            return None
        for condition in m.valid_if:
            if condition.oid not in self.got:
                # Without the condition object the value cannot be judged: take it as it is.
                self.out.missing.append(f"{condition.object} ({condition.oid})")
                continue
            if not self._passes(condition, self.got[condition.oid], condition.oid):
                self.out.not_measured.append(
                    f"{m.object} ({m.oid}): {condition.object} is not in {condition.equals}"
                )
                return None
        digits = self.got.get(m.scale_digits_oid) if m.scale_digits_oid else None
        exponent = self.got.get(m.scale_exponent.oid) if m.scale_exponent else None
        return self._convert(self.got[m.oid], m.oid, digits, exponent)

    # -- tables ---------------------------------------------------------------------------
    def _rows(self) -> list[tuple[str, float]] | None:
        """(row name, value) of the metric's rows in index order; None when the column is absent."""
        m = self.m
        column = self.walked.get(m.oid, {})
        if not column:
            self.out.missing.append(f"{m.object} ({m.oid})")
            return None
        indexes = sorted(column, key=_index_key)
        if m.index_suffix is not None:
            indexes = [
                i for i in indexes if i == m.index_suffix or i.endswith("." + m.index_suffix)
            ]
        for condition in m.where:
            other = self.walked.get(condition.oid, {})
            if not other:
                self.out.missing.append(f"{condition.object} ({condition.oid})")
                return None
            indexes = [i for i in indexes if self._passes(condition, other.get(i), condition.oid)]
        if not indexes:
            chosen = [c.describe() for c in m.where]
            if m.index_suffix is not None:
                chosen.append(f"index ending in .{m.index_suffix}")
            self.out.missing.append(f"{m.object} ({m.oid}): no row with {' and '.join(chosen)}")
            return None
        for condition in m.valid_if:
            if not self.walked.get(condition.oid):
                # Without the condition object a row cannot be judged: take it as it is.
                self.out.missing.append(f"{condition.object} ({condition.oid})")
        rows = []
        for index in indexes:
            value = self._row(index, column[index])
            if value is not None:
                rows.append((self._row_name(index), value))
        return rows

    def _row(self, index: str, raw: Value) -> float | None:
        m = self.m
        where = f"{m.object}.{index}"
        for condition in m.valid_if:
            other = self.walked.get(condition.oid, {})
            if not other:
                continue  # the device lacks the condition object: reported by _rows
            if not self._passes(condition, other.get(index), f"{condition.oid}.{index}"):
                self.out.not_measured.append(
                    f"{where}: {condition.object} is not in {condition.equals}"
                )
                return None
        digits = exponent = None
        if m.scale_digits_oid:
            digits = self.walked.get(m.scale_digits_oid, {}).get(index)
            if digits is None:
                self.out.problems.append(
                    f"{where}: no decimal digits at {m.scale_digits_oid}.{index}"
                )
                return None
        if m.scale_exponent:
            exponent = self.walked.get(m.scale_exponent.oid, {}).get(index)
            if exponent is None:
                self.out.problems.append(
                    f"{where}: no {m.scale_exponent.object} at {m.scale_exponent.oid}.{index}"
                )
                return None
        return self._convert(raw, f"{m.oid}.{index}", digits, exponent)

    def _row_name(self, index: str) -> str:
        m = self.m
        if m.index_oid:
            label = self.walked.get(m.index_oid, {}).get(index)
            if isinstance(label, str) and label.strip() and "[" not in label and "]" not in label:
                return label.strip()
        if m.index_suffix is not None and index != m.index_suffix:
            return index.removesuffix("." + m.index_suffix)
        return index

    # -- values ---------------------------------------------------------------------------
    def _passes(self, condition: Condition, value: Value | None, oid: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, int):
            self.out.problems.append(
                f"{condition.object} ({oid}): expected a number, got {value!r}"
            )
            return False
        return value in condition.equals

    def _convert(
        self, raw: Value, oid: str, digits: Value | None, exponent: Value | None
    ) -> float | None:
        """The raw value in the field's unit, or None (not measured, or a problem noted)."""
        m = self.m
        name = f"{m.object} ({oid})"
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.out.problems.append(f"{name}: expected a number, got {raw!r}")
            return None
        if (isinstance(raw, int) and raw in m.not_measured) or (
            m.min_raw is not None and raw < m.min_raw
        ):
            self.out.not_measured.append(f"{name}: raw {raw}")
            return None
        value = float(raw)
        if m.transform == "nonzero":
            return 1.0 if value != 0 else 0.0
        value *= m.scale
        if m.scale_exponent is not None:
            if not isinstance(exponent, int):
                self.out.problems.append(f"{name}: {m.scale_exponent.object} is {exponent!r}")
                return None
            value *= m.scale_exponent.base ** (exponent + m.scale_exponent.offset)
        if digits is not None:
            if not isinstance(digits, int):
                self.out.problems.append(f"{name}: decimal digits are {digits!r}")
                return None
            # Digits <= 0 (EntitySensorPrecision's "accurate digits" or "not fixed-point")
            # leave the value as it is.
            if digits > 0:
                value /= 10**digits
        return float(f"{value:.12g}")  # no binary noise such as 246.10000000000002


def _index_key(index: str) -> tuple[int, ...]:
    return tuple(int(part) for part in index.split(".") if part.isdigit())
