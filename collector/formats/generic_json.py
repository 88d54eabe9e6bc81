"""A generic JSON payload: values at RFC 6901 pointers, each with a field and a scale.

The mapping's `json` block names, for each value, its pointer (`/el/effekt`), the Gronkoll
field it is (`power_w`) and the scale from the payload's unit to the field's (1000 for kW ->
W). An optional `time_pointer` gives the reading time: ISO 8601 (`time_unit: iso`; without an
offset it is local time in the municipality's zone) or Unix time in `s` or `ms`. A `state`
field takes the state's name (on, idle, sleep, off) or its code.

Every configured pointer must be there: a missing or unusable value is quarantined, and the
message's other values are still read.
"""

from __future__ import annotations

from gronkoll.collector.formats.base import (
    Decoded,
    Decoder,
    Input,
    json_value,
    resolve_pointer,
)
from gronkoll.collector.formats.times import (
    believable,
    local_time_ms,
    unix_ms,
)


class GenericJson(Decoder):
    """Values at JSON pointers, as configured."""

    name = "json"
    needs_device_level = True

    def decode(self, msg: Input) -> Decoded:
        """Each configured pointer's value, at the payload's time or the receive time."""
        out = Decoded()
        spec = msg.mapping.json_format
        if spec is None:  # the settings refuse format json without it; guard anyway
            out.problem("format json without a json block in the mapping")
            return out
        ok, doc = json_value(msg.data, out)
        if not ok:
            return out
        t = msg.received_ms
        if spec.time_pointer is not None:
            found, raw = resolve_pointer(doc, spec.time_pointer)
            device_t: int | None = None
            if not found:
                out.problem(f"{spec.time_pointer}: no time there; used the receive time")
            elif spec.time_unit == "iso":
                if isinstance(raw, str):
                    device_t = local_time_ms(raw, msg.settings.tz, msg.received_ms)
                if device_t is None:
                    out.problem(f"{spec.time_pointer}: {raw!r} is not an ISO 8601 time")
            else:
                device_t = unix_ms(raw, spec.time_unit)
                if device_t is None:
                    out.problem(f"{spec.time_pointer}: {raw!r} is not a Unix time")
            t = believable(device_t, msg, out, spec.time_pointer)
        for f in spec.fields:
            found, raw = resolve_pointer(doc, f.pointer)
            if not found:
                out.problem(f"{f.pointer}: no value there (expected {f.field})")
            else:
                out.add_value(f.field, t, raw, label=f.pointer, scale=f.scale)
        return out
