"""Times in and out: parsing user dates and ISO 8601 times, local-time bucket labels."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from gronkoll.errors import InputError

Bucket = Literal["hour", "day", "week", "month", "none"]
BUCKETS: tuple[str, ...] = ("hour", "day", "week", "month", "none")
MS_PER_HOUR = 3_600_000


def parse_instant(text: str) -> int:
    """An ISO 8601 time with an offset or Z, as ms since the epoch; InputError otherwise."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-03-29T02:15:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        raise InputError(f"{text!r} has no time zone offset (add Z or e.g. +01:00)")
    return round(moment.timestamp() * 1000)


def local_midnight_ms(day: date, tz: ZoneInfo) -> int:
    """The start of a local day, as ms since the epoch."""
    return round(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def parse_report_time(text: str, tz: ZoneInfo, *, option: str) -> int:
    """A --from/--to value: a local date (midnight there) or an ISO 8601 time, in ms."""
    value = text.strip()
    if len(value) == 10:
        try:
            return local_midnight_ms(date.fromisoformat(value), tz)
        except ValueError:
            raise InputError(f"{option} {text!r}: not a date (expected YYYY-MM-DD)") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{option} {text!r}: expected a date (YYYY-MM-DD) or an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = _local(moment, tz, option, text)
    return round(moment.timestamp() * 1000)


def _local(naive: datetime, tz: ZoneInfo, option: str, text: str) -> datetime:
    """A naive local time in tz; refuse one a DST change skips or repeats."""
    first, second = naive.replace(tzinfo=tz), naive.replace(tzinfo=tz, fold=1)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise InputError(
            f"{option} {text!r} does not exist in {tz.key} (daylight saving time begins): "
            "add the offset or pick another time"
        )
    if first.utcoffset() != second.utcoffset():
        raise InputError(
            f"{option} {text!r} happens twice in {tz.key} (daylight saving time ends): "
            "add the offset, e.g. +02:00 or +01:00"
        )
    return first


def check_range(start_ms: int, end_ms: int, names: tuple[str, str] = ("--from", "--to")) -> None:
    """Refuse an empty or reversed range, and times off the hour (rollups are hourly)."""
    start_name, end_name = names
    if end_ms <= start_ms:
        raise InputError(f"{end_name} must be after {start_name} ({end_name} is exclusive)")
    for name, value in ((start_name, start_ms), (end_name, end_ms)):
        if value % MS_PER_HOUR:
            raise InputError(f"{name} must fall on a whole hour: energy is kept in hourly rollups")


def local_date(ms: int, tz: ZoneInfo) -> date:
    """The local date an instant falls on."""
    return datetime.fromtimestamp(ms / 1000, tz).date()


def iso_local(ms: int, tz: ZoneInfo) -> str:
    """An instant as local ISO 8601 to the minute, e.g. 2026-03-29T03:00+02:00."""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="minutes")


def iso_utc(ms: int) -> str:
    """An instant as UTC ISO 8601 with Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def day_label(day: date, bucket: Bucket) -> str:
    """The label of the day/week/month/none bucket a local date falls in."""
    if bucket == "day":
        return day.isoformat()
    if bucket == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if bucket == "month":
        return f"{day.year}-{day.month:02d}"
    return "all"


def days_between(first: date, end: date) -> list[date]:
    """Local dates from first up to, not including, end."""
    return [first + timedelta(days=i) for i in range((end - first).days)]
