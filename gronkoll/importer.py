"""`gronkoll import`: readings from a CSV file with the header time,device,field,value."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gronkoll.errors import InputError
from gronkoll.fields import FIELDS, STATE_CODES
from gronkoll.ingest import Ingestor, Reading
from gronkoll.settings import Settings
from gronkoll.timeparse import parse_instant

HEADER = ("time", "device", "field", "value")
BATCH = 50_000
MAX_ERRORS_SHOWN = 50


@dataclass(slots=True)
class ImportSummary:
    """What an import found and did."""

    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    intervals: int = 0
    events: int = 0
    energy_wh: float = 0.0
    imported: bool = False


def parse_row(row: list[str], settings: Settings) -> Reading:
    """One CSV row as a reading; InputError with the reason when it is bad."""
    if len(row) != 4:
        raise InputError(f"expected 4 columns (time,device,field,value), got {len(row)}")
    time_text, device, fld, value_text = (c.strip() for c in row)
    t = parse_instant(time_text)
    if settings.device(device) is None:
        raise InputError(f"unknown device {device!r} (not in the configuration)")
    spec = FIELDS.get(fld)
    if spec is None:
        raise InputError(f"unknown field {fld!r} (known: {', '.join(sorted(FIELDS))})")
    if spec.kind == "state":
        code = STATE_CODES.get(value_text.lower())
        if code is None:
            raise InputError(f"state {value_text!r} is not one of on, idle, sleep, off")
        return (device, fld, t, float(code))
    try:
        value = float(value_text)
    except ValueError:
        raise InputError(f"value {value_text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"value {value_text!r} is not a finite number")
    if value < 0 and (spec.kind == "counter" or spec.energy is not None):
        raise InputError(f"{fld} cannot be negative ({value_text})")
    return (device, fld, t, value)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or tuple(h.strip().lower() for h in header) != HEADER:
                found = ",".join(header) if header else "an empty file"
                raise InputError(
                    f"{path}: line 1: expected the header {','.join(HEADER)}, found {found}"
                )
            for row in reader:
                if row and any(c.strip() for c in row):
                    yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as err:
            raise InputError(f"{path}: line {reader.line_num}: {err}") from None


def _valid_readings(
    path: Path, settings: Settings, summary: ImportSummary | None
) -> Iterator[Reading]:
    for line, row in _rows(path):
        try:
            reading = parse_row(row, settings)
        except InputError as err:
            if summary is not None:
                summary.rejected.append((line, str(err)))
            continue
        if summary is not None:
            summary.accepted += 1
        yield reading


def import_csv(
    path: Path, settings: Settings, ingestor: Ingestor, *, skip_bad: bool
) -> ImportSummary:
    """Validate the whole file, then (if it is clean or skip_bad) ingest it in batches.

    Without skip_bad, a file with any bad row imports nothing.
    """
    summary = ImportSummary()
    for _ in _valid_readings(path, settings, summary):
        pass
    if summary.rejected and not skip_bad:
        return summary
    batch: list[Reading] = []
    for reading in _valid_readings(path, settings, None):
        batch.append(reading)
        if len(batch) >= BATCH:
            _ingest(ingestor, batch, summary)
            batch = []
    if batch:
        _ingest(ingestor, batch, summary)
    summary.imported = True
    return summary


def _ingest(ingestor: Ingestor, batch: list[Reading], summary: ImportSummary) -> None:
    result = ingestor.ingest(batch)
    summary.stored += result.stored
    summary.duplicates += result.duplicates
    summary.intervals += result.intervals
    summary.events += result.events
    summary.energy_wh += result.energy_wh


def format_summary(path: Path, summary: ImportSummary) -> str:
    """The lines `gronkoll import` prints."""
    lines = [f"{path}: {summary.accepted} rows accepted, {len(summary.rejected)} rejected"]
    for line, reason in summary.rejected[:MAX_ERRORS_SHOWN]:
        lines.append(f"  line {line}: {reason}")
    if len(summary.rejected) > MAX_ERRORS_SHOWN:
        lines.append(f"  ... and {len(summary.rejected) - MAX_ERRORS_SHOWN} more rejected rows")
    if not summary.imported:
        lines.append(
            "Nothing imported: fix the rows above, or run again with --skip-bad to import the rest."
        )
        return "\n".join(lines)
    lines.append(
        f"Imported {summary.stored} readings ({summary.duplicates} repeated readings dropped): "
        f"{summary.intervals} energy intervals, {summary.energy_wh / 1000:,.3f} kWh"
    )
    if summary.events:
        lines.append(
            f"{summary.events} events recorded (gaps, resets, glitches or rejected values); "
            "see them with `gronkoll events`"
        )
    return "\n".join(lines)
