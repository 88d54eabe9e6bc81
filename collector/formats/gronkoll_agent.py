"""Gronkoll's PC agent: the machine's state, published retained (schema v1, docs/mqtt.md).

    {"v": 1, "state": "idle", "idle_s": 840, "user_present": true,
     "agent": "1.2.0", "t": "2025-02-03T08:10:00+01:00"}

`state` (on | idle | sleep | off) becomes a `state` reading, whose energy is the state's power
from the device's power profile; `user_present` (whether anyone is logged in: a yes or no,
never who, DESIGN decision 8) becomes `user_present` 0/1. `idle_s` and `agent` are checked
but not stored yet. `t` is when the agent saw the state (ISO 8601; the receive time when
absent), so the retained message delivered again at every reconnect repeats its reading and
is dropped as a repeat. The plain payload `offline` is the agent's last will: nothing is known
about the machine then, and nothing is read.
"""

from __future__ import annotations

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    gronkoll_message,
    number,
    redact_to_schema,
)
from gronkoll.collector.formats.times import (
    message_time,
)

VERSION = 1
SCHEMA_KEYS = frozenset({"v", "state", "idle_s", "user_present", "agent", "t"})
LAST_WILL = b"offline"


class GronkollAgent(Decoder):
    """A PC agent's state message."""

    name = "gronkoll-agent"
    needs_device_level = True

    def redact(self, data: bytes) -> str:
        """Only the schema's keys are ever kept."""
        return redact_to_schema(data, SCHEMA_KEYS)

    def decode(self, msg: Input) -> Decoded:
        """State and user presence at the agent's time."""
        out = Decoded()
        if msg.data.strip() == LAST_WILL:
            out.ignored = "the agent's last will (offline): the machine's state is not known"
            return out
        obj = gronkoll_message(msg, out, VERSION)
        if obj is None:
            return out
        t = message_time(obj, msg, out)
        if "state" in obj:
            out.add_state(t, obj["state"], label="state")
        else:
            out.problem("no state in the message")
        if "user_present" in obj:
            present = obj["user_present"]
            if isinstance(present, bool):
                out.readings.append(("user_present", t, 1.0 if present else 0.0))
            else:
                out.problem("user_present: must be true or false")
        if "idle_s" in obj:
            idle = number(obj["idle_s"])
            if idle is None or not idle >= 0:
                out.problem("idle_s: must be a number of seconds, 0 or more")
        if "agent" in obj and not isinstance(obj["agent"], str):
            out.problem("agent: must be the agent's version as text")
        return out
