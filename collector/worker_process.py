"""A Python child process that serves requests over a pipe, started without multiprocessing.

The commit worker used to be a ``multiprocessing`` spawn process. Spawning that way also
starts multiprocessing's resource tracker (a third Python interpreter, about 13 MB, kept for
the collector's whole life to clean up semaphores that Gronkoll never makes) and re-imports the
parent's main module in the child. `ChildProcess` starts ``python -c`` with the two pipe ends
passed as file descriptors, sends the target and its arguments as the first message (pickled,
as multiprocessing would), and offers the few calls the worker's owner needs
(`is_alive`, `join`, `exitcode`, `kill`, `pid`). The pipes are multiprocessing's
`Connection` objects over a socket pair and an OS pipe, the same framing as before.

A child whose parent is gone reads end-of-file on its pipe and ends itself; stdout and
stderr are the parent's, so a crash's traceback lands in the collector's output.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

_BOOT = "from gronkoll.collector.worker_process import child_main; child_main()"


def log_pipe() -> tuple[Connection, Connection]:
    """(reading end, writing end) of a one-way pipe for log records."""
    read_fd, write_fd = os.pipe()
    return Connection(read_fd, writable=False), Connection(write_fd, readable=False)


class ChildProcess:
    """`target(conn, logs, *args)` in a new Python process; `conn` is our end of its pipe."""

    def __init__(self, target: Callable[..., Any], args: tuple[Any, ...], logs: Connection) -> None:
        here, there = socket.socketpair()
        fds = (there.fileno(), logs.fileno())
        self._popen = subprocess.Popen(  # noqa: S603 (this interpreter, our own code)
            [sys.executable, "-c", _BOOT, *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
        )
        there.close()
        self.conn = Connection(here.detach())
        self.conn.send((target.__module__, target.__qualname__, args))

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """Its exit status once it has ended (minus the signal number if killed), else None."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        """Wait for it to end, at most timeout seconds."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def kill(self) -> None:
        self._popen.kill()


def child_main() -> None:
    """The child's side: take the target from the pipe and run it."""
    conn = Connection(int(sys.argv[1]))
    logs = Connection(int(sys.argv[2]), readable=False)
    try:
        module, name, args = conn.recv()
    except (EOFError, OSError):  # the parent went away before it said what to do
        return
    target = getattr(importlib.import_module(module), name)
    target(conn, logs, *args)
