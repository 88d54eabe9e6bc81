"""A paho-mqtt client that reads its socket in large chunks instead of a few bytes at a time.

paho-mqtt 2 reads a packet with one ``recv`` for its first byte, one per byte of its length
and one for the rest: four system calls for a small PUBLISH, about a quarter of the network
thread's time when a backlog streams in. `ReadAheadClient` answers those reads from a buffer
it fills with one ``recv`` of up to READ_AHEAD bytes. It overrides paho's private
``_sock_recv`` (the single place paho reads its socket, in paho-mqtt 2.1 and 2.2); should a
later paho stop calling it, the client reads as paho does, only slower.

Bytes read ahead are not in the socket any more, so a select() on it does not see them: the
network loop asks `buffered()` before it waits (as it asks an SSL socket's ``pending()``).
A new connection starts with an empty buffer.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho

#: Bytes asked of the socket per read.
READ_AHEAD = 65_536


class ReadAheadClient(paho.Client):
    """paho's client, its socket read through a buffer of up to READ_AHEAD bytes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_pos = 0
        self._ahead_sock: object = None

    def buffered(self) -> int:
        """Bytes read from the socket and not yet handed to paho."""
        if self._sock is not self._ahead_sock:
            return 0
        return len(self._ahead) - self._ahead_pos

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._ahead_sock:  # a new connection: nothing of the old one
            self._ahead, self._ahead_pos, self._ahead_sock = b"", 0, self._sock
        pos = self._ahead_pos
        if pos >= len(self._ahead):
            # paho's own read: its errors (would block, connection lost) are paho's to handle
            data = super()._sock_recv(max(bufsize, READ_AHEAD))
            if len(data) <= bufsize:
                return data  # all of it is asked for (or the end of the stream, b"")
            self._ahead, pos = data, 0
        end = pos + bufsize
        self._ahead_pos = end
        return self._ahead[pos:end]
