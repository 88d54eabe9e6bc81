"""The collector's per-device status as InfluxDB points (measurement ``gronkoll_device``).

When the store is InfluxDB, every poll round's status updates also go there, so Grafana can
show which devices answer (docs/influxdb.md): tags ``device``, ``site``, ``kind``; fields
``up`` (1 when the latest poll answered, else 0), ``consecutive_failures`` and
``last_success_age_s`` (at the poll; left out when the device never answered); timestamp
the poll's time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gronkoll.settings import Device
from gronkoll.statedb import StatusUpdate
from gronkoll.stores.lineprotocol import tag_set

MEASUREMENT = "gronkoll_device"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def device_lines(
    statuses: Sequence[StatusUpdate], device: Callable[[str], Device | None]
) -> list[str]:
    """One ``gronkoll_device`` line per polled device (precision ms), at its poll's time;
    ``device`` looks up a device's configuration (its site and kind)."""
    lines = []
    for status in statuses:
        at = status.last_poll_at
        if at is None:
            continue  # never polled: nothing to say yet
        config = device(status.device_id)
        tags = tag_set(
            {
                "device": status.device_id,
                "site": config.site if config else None,
                "kind": config.kind if config else None,
            }
        )
        up = status.consecutive_failures == 0 and status.last_success is not None
        # Floats, as every number in the schema (docs/influxdb.md): a field never changes type.
        fields = [f"up={float(up)}", f"consecutive_failures={float(status.consecutive_failures)}"]
        if status.last_success is not None:
            age = max(0.0, (at - status.last_success).total_seconds())
            fields.append(f"last_success_age_s={age:.3f}")
        lines.append(f"{MEASUREMENT}{tags} {','.join(fields)} {_ms(at)}")
    return lines
