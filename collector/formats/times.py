"""Reading times from payloads: device clocks in local or Unix time, believed or not.

A device's own time is the reading time when it is believable: a redelivered message then
repeats its readings' times exactly. An unset clock or one well ahead of ours is not believed,
and the receive time is used instead, with a problem noted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gronkoll.collector.formats.base import Decoded, Input, number

#: A device clock further ahead of the receive time than this is not believed.
MAX_CLOCK_AHEAD_MS = 10 * 60 * 1000
#: Times before this are an unset device clock (Tasmota shows 1970 until NTP answers).
EARLIEST_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
#: Beyond the last instant a datetime can show (9999-12-31), a time is not a time.
LATEST_MS = 253_402_300_800_000
#: Distinct (text, zone) pairs whose instants are remembered: a fleet reports in the same
#: seconds (Tasmota's TelePeriod), so one round of telemetry repeats a handful of texts.
TIMES_CACHED = 4096


def local_time_ms(text: str, tz: ZoneInfo, near_ms: int) -> int | None:
    """An ISO 8601 time as ms; without an offset it is local time in tz.

    A local time that happens twice (autumn) or never (spring) at a daylight-saving change
    is taken as the reading nearest the receive time, so a redelivery maps the same way.
    """
    candidates = _instants(text, tz)
    if candidates is None:
        return None
    if len(candidates) == 1:
        return candidates[0]
    return min(candidates, key=lambda ms: (abs(ms - near_ms), ms))


@lru_cache(maxsize=TIMES_CACHED)
def _instants(text: str, tz: ZoneInfo) -> tuple[int, ...] | None:
    """The instants (ms) an ISO 8601 text can be in tz: one, or two at a DST change.

    Cached: parsing and converting a local time costs ~6 us, and most texts repeat.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return (round(moment.timestamp() * 1000),)
    return tuple({round(moment.replace(tzinfo=tz, fold=f).timestamp() * 1000) for f in (0, 1)})


def text_time(raw: object, msg: Input, out: Decoded, label: str) -> int:
    """A device's ISO 8601 time (local without an offset) if believable, else the receive time."""
    device_t = (
        local_time_ms(raw, msg.settings.tz, msg.received_ms) if isinstance(raw, str) else None
    )
    if device_t is None:
        out.problem(f"{label}: {raw!r} is not an ISO 8601 time; used the receive time")
    return believable(device_t, msg, out, label)


def message_time(obj: dict[str, Any], msg: Input, out: Decoded) -> int:
    """A Gronkoll message's time `t`, or the receive time when it has none."""
    return text_time(obj["t"], msg, out, "t") if "t" in obj else msg.received_ms


def unix_ms(raw: object, unit: str) -> int | None:
    """A Unix time in s or ms as ms; None when it is not a number or beyond year 9999."""
    value = number(raw)
    if value is None:
        return None
    t = value * 1000 if unit == "s" else value
    if not abs(t) < LATEST_MS:  # also false for NaN and infinity
        return None
    return round(t)


def believable(t_ms: int | None, msg: Input, out: Decoded, label: str) -> int:
    """The device's time when it is believable, else the receive time with a problem noted.

    Late is believable (a broker keeps messages for a persistent session); a clock that is
    unset or well ahead of ours is not.
    """
    if t_ms is None:
        return msg.received_ms
    if t_ms < EARLIEST_MS or t_ms > msg.received_ms + MAX_CLOCK_AHEAD_MS:
        out.problem(
            f"{label}: device time {_instant(t_ms)} is not believable; used the receive time"
        )
        return msg.received_ms
    return t_ms


def _instant(t_ms: int) -> str:
    try:
        return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return f"{t_ms} ms after 1970"
