"""What the collector subscribes to: each filter once, none inside another, optionally shared.

A broker may send a message once per matching subscription: Mosquitto 2.0 does for MQTT 5
clients, so a device topic that a fleet filter also covers would arrive twice (and a payload
without a time of its own would be stored twice). So a filter that another one covers is not
subscribed; two filters that only partly overlap (``a/+/c`` and ``a/b/+``) are kept, with a
warning. With ``shared_group``, each filter becomes ``$share/<group>/<filter>`` (MQTT 5 shared
subscriptions: the collectors of one group split the stream).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def covers(outer: str, inner: str) -> bool:
    """Whether every topic that filter inner matches is also matched by filter outer."""
    a, b = outer.split("/"), inner.split("/")
    if b and b[0].startswith("$") and a and a[0] in ("+", "#"):
        return False  # wildcards at the first level do not match $SYS/...
    for i, level in enumerate(a):
        if level == "#":
            return True
        if i >= len(b) or b[i] == "#":
            return False
        if level != "+" and (b[i] == "+" or b[i] != level):
            return False
    return len(a) == len(b)


def overlap(one: str, two: str) -> bool:
    """Whether some topic matches both filters."""
    a, b = one.split("/"), two.split("/")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != "+" and y != "+" and x != y:
            return False
    return True


def subscription_filters(filters: Sequence[str], shared_group: str | None = None) -> list[str]:
    """The filters to subscribe to: covered ones dropped, shared when a group is given."""
    unique = list(dict.fromkeys(filters))
    kept = [f for f in unique if not any(covers(g, f) for g in unique if g != f)]
    for i, f in enumerate(kept):
        for g in kept[i + 1 :]:
            if overlap(f, g):
                log.warning(
                    "MQTT filters %r and %r overlap: a message matching both may arrive twice",
                    f,
                    g,
                )
    if shared_group:
        return [f"$share/{shared_group}/{f}" for f in kept]
    return kept
