"""What every payload decoder shares: its input, its output, and checks of values and times.

A decoder turns one MQTT message into readings (field, time, value) and problems. It never
raises for bad input: a value it cannot use becomes a problem (which the pipeline quarantines)
and the message's other values are still read.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from gronkoll.fields import STATE_CODES, STATES, base_field, unit_of
from gronkoll.settings import MqttMapping, Settings
from gronkoll.statedb import MeetingEvent

#: Quarantined payloads are kept up to this many bytes (4 KiB).
MAX_PAYLOAD_BYTES = 4096

#: Distinct JSON pointers whose tokens are remembered (a configuration names a few).
POINTERS_CACHED = 1024

#: Fields whose value may be below zero; every other field is a physical amount.
MAY_BE_NEGATIVE = frozenset({"temperature_c"})
#: Fields whose values are codes, checked one by one in impossible().
CODED = frozenset({"state", "user_present"})


class Input(NamedTuple):
    """One message as a decoder sees it.

    A named tuple, made once per message: as immutable as a frozen dataclass, whose
    __init__ (a call of object.__setattr__ per field) cost 2 us a message.
    """

    topic: str
    data: bytes
    received_ms: int
    mapping: MqttMapping
    device: str | None  # from the device's own topic or the route's device_level
    settings: Settings
    state: dict[str, Any]  # this device's decoder state, kept between messages


@dataclass(slots=True)
class Decoded:
    """What a decoder made of one message."""

    readings: list[tuple[str, int, float]] = field(default_factory=list)  # field, t ms, value
    problems: list[str] = field(default_factory=list)
    meetings: list[MeetingEvent] = field(default_factory=list)
    device: str | None = None  # the payload names its device (a meeting's room)
    ignored: str | None = None  # why this topic carries nothing to read (a status, a will)

    def problem(self, text: str) -> None:
        """Record a value or part of the payload that could not be used."""
        self.problems.append(text)

    def add(self, fld: str, t_ms: int, raw: object, *, label: str, scale: float = 1.0) -> None:
        """Add a reading from a raw payload value, or a problem saying why it is unusable."""
        kind = type(raw)
        if kind is float or kind is int:  # the usual case, scaled without calls
            value = raw * scale  # type: ignore[operator]
        else:  # numeric text (a plain-number payload), or not a number at all
            parsed = number(raw)
            if parsed is None:
                self.problem(f"{label}: {_show(raw)} is not a number")
                return
            value = parsed * scale
        if 0.0 <= value < math.inf and fld not in CODED and "[" not in fld:
            self.readings.append((fld, t_ms, float(value)))  # what impossible() accepts, fast
            return
        why = impossible(fld, value)
        if why is not None:
            unit = unit_of(fld)
            self.problem(f"{label}: {value:g}{' ' + unit if unit else ''}: {why}")
            return
        self.readings.append((fld, t_ms, float(value)))

    def add_value(self, fld: str, t_ms: int, raw: object, *, label: str, scale: float) -> None:
        """Add a configured field's value: a state by its name or code, else a scaled number."""
        if fld == "state":
            self.add_state(t_ms, raw, label=label)
        else:
            self.add(fld, t_ms, raw, label=label, scale=scale)

    def add_state(self, t_ms: int, raw: object, *, label: str) -> None:
        """Add a state reading from its name (on, idle, sleep, off) or its code."""
        code = state_code(raw)
        if code is None:
            self.problem(f"{label}: {_show(raw)} is not one of {', '.join(STATES)}")
            return
        self.readings.append(("state", t_ms, float(code)))


class Decoder(ABC):
    """One payload format: how its topics name devices and how its payloads read."""

    name: ClassVar[str]
    #: A subscription in this format must say which topic level holds the device id.
    needs_device_level: ClassVar[bool] = False

    def device_from_topic(self, topic: str) -> str | None:
        """The device id a topic names when its subscription gives no device_level."""
        return None

    def redact(self, data: bytes) -> str:
        """The payload as it may be kept in quarantine (at most 4 KiB)."""
        return payload_text(data)

    @abstractmethod
    def decode(self, msg: Input) -> Decoded:
        """Readings and problems from one message; never raises for bad input."""


# -- values -----------------------------------------------------------------------------
def number(raw: object) -> float | None:
    """A JSON number or numeric text as a float; None for anything else (true, null, "n/a")."""
    if type(raw) is str:  # numeric text, a plain-number payload: checked before isinstance()s
        try:
            return float(raw)
        except ValueError:
            return None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str | bytes):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def impossible(fld: str, value: float) -> str | None:
    """Why a value cannot be physically true for a field, or None when it can."""
    if not math.isfinite(value):
        return "not a finite number"
    base = base_field(fld)
    if base == "state":
        return None if value in (0, 1, 2, 3) else "not a state code 0..3"
    if base == "user_present":
        return None if value in (0, 1) else "must be 0 or 1"
    if value < 0 and base not in MAY_BE_NEGATIVE:
        return f"{base} cannot be negative"
    return None


def state_code(raw: object) -> int | None:
    """A state name (case-insensitive) or code as its code, else None."""
    if isinstance(raw, str):
        return STATE_CODES.get(raw.strip().lower())
    value = number(raw)
    if value is not None and value in (0, 1, 2, 3):
        return int(value)
    return None


def _show(raw: object) -> str:
    text = json.dumps(raw, ensure_ascii=False) if not isinstance(raw, bytes) else repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


# -- payloads ---------------------------------------------------------------------------
def payload_text(data: bytes) -> str:
    """The payload as text for the quarantine: its first 4 KiB, undecodable bytes replaced."""
    return data[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")


def json_value(data: bytes, out: Decoded) -> tuple[bool, Any]:
    """(True, value) for a JSON payload; (False, None) with a problem recorded otherwise."""
    try:
        text = data.decode("utf-8")  # MQTT payloads of these formats are UTF-8 (no BOM sniffing)
    except UnicodeDecodeError:
        out.problem("payload is not UTF-8 text")
        return False, None
    try:
        return True, json.loads(text)
    except ValueError as err:
        out.problem(f"payload is not JSON: {err}")
    except RecursionError:
        out.problem("payload is JSON nested too deep to read")
    return False, None


def json_object(data: bytes, out: Decoded) -> dict[str, Any] | None:
    """The payload as a JSON object, or None with a problem recorded."""
    ok, value = json_value(data, out)
    if not ok:
        return None
    if not isinstance(value, dict):
        out.problem(f"payload is JSON but not an object: {_show(value)}")
        return None
    return value


def resolve_pointer(doc: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) at an RFC 6901 JSON pointer such as /el/effekt or /phases/0."""
    node = doc
    for key in pointer_keys(pointer):
        if isinstance(node, dict):
            if key not in node:
                return False, None
            node = node[key]
        elif isinstance(node, list):
            if not key.isdigit() or (len(key) > 1 and key.startswith("0")):
                return False, None
            index = int(key)
            if index >= len(node):
                return False, None
            node = node[index]
        else:
            return False, None
    return True, node


@lru_cache(maxsize=POINTERS_CACHED)
def pointer_keys(pointer: str) -> tuple[str, ...]:
    """An RFC 6901 pointer's reference tokens, unescaped: /a~1b/0 -> ('a/b', '0').

    Cached: a mapping's few pointers are resolved in every message of its topics.
    """
    if pointer == "":
        return ()
    # RFC 6901 section 4: ~1 first, then ~0
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def redact_to_schema(
    data: bytes,
    keep: frozenset[str],
    clean: Mapping[str, Callable[[Any], Any]] | None = None,
) -> str:
    """A Gronkoll message as it may be quarantined: only its schema's keys.

    The two Gronkoll message types never carry names (DESIGN decision 8). A sender that
    puts one in by mistake must not have it kept, so anything outside the schema is dropped
    and a payload that is not a JSON object is not kept at all.
    """
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return f"(not JSON, {len(data)} bytes; not kept: Gronkoll messages are kept by schema)"
    if not isinstance(value, dict):
        return "(not a JSON object; not kept: Gronkoll messages are kept by schema)"
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if clean is not None and key in clean:
            kept[key] = clean[key](item)  # a schema key whose value is itself filtered
        else:
            kept[key] = item if key in keep else "<dropped>"
    return payload_text(json.dumps(kept, ensure_ascii=False).encode())


def gronkoll_message(msg: Input, out: Decoded, version: int) -> dict[str, Any] | None:
    """A Gronkoll message (agent state, meeting event) of this schema version, else None."""
    obj = json_object(msg.data, out)
    if obj is None:
        return None
    if obj.get("v") != version:
        out.problem(f"v: {obj.get('v')!r} is not a schema version this Gronkoll reads ({version})")
        return None
    return obj
