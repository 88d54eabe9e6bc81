"""A plain number per topic: the mapping's `field`, times its `scale`, at the receive time.

Many small meters and scripts publish one value per topic (`rum/1/effekt` -> `412.5`). A
`state` field also takes a state's name (on, idle, sleep, off).
"""

from __future__ import annotations

from gronkoll.collector.formats.base import Decoded, Decoder, Input


class Number(Decoder):
    """One number per message, as configured (field and scale)."""

    name = "number"
    needs_device_level = True

    def decode(self, msg: Input) -> Decoded:
        """The payload as one reading of the configured field."""
        out = Decoded()
        fld = msg.mapping.field
        if fld is None:  # the settings refuse format number without it; guard anyway
            out.problem("format number without a field in the mapping")
            return out
        text = msg.data.decode("utf-8", errors="replace").strip()
        out.add_value(fld, msg.received_ms, text, label="payload", scale=msg.mapping.scale)
        return out
