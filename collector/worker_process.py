"""A Python child process that serves requests over a pipe, started without multiprocessing.

The commit worker used to be a ``multiprocessing`` spawn process. Spawning that way also
starts multiprocessing's resource tracker (a third Python interpreter, about 13 MB, kept for
the collector's whole life to clean up semaphores that Gronkoll never makes) and re-imports the
parent's main module in the child. `ChildProcess` starts ``python -c`` with the two pipe ends
passed as file descriptors, sends the target and its arguments as the first message (pickled,
as multiprocessing would), and offers the few calls the worker's owner needs
(`is_alive`, `join`, `exitcode`, `kill`, `pid`). The pipes are multiprocessing's
`Connection` objects over a socket pair and an OS pipe, the same framing as before.

The child never outlives its parent (as a multiprocessing daemon would not at a clean exit,
and here also when the parent is killed): it gets the reading end of a lifeline pipe whose
writing end only the parent holds, and a thread of its own that ends the child at once when
that pipe reads end-of-file, that is when the parent has died or let it go. A collector killed
with SIGKILL so takes its worker with it, mid-commit or not (nothing of that batch was
acknowledged, as when the worker alone is killed), instead of leaving it to finish and write
beside the collector started next. stdout and stderr are the parent's, so a crash's
traceback lands in the collector's output.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import threading
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
        life_r, self._lifeline = os.pipe()
        fds = (there.fileno(), logs.fileno(), life_r)
        self._popen = subprocess.Popen(  # noqa: S603 (this interpreter, our own code)
            [sys.executable, "-c", _BOOT, *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
        )
        there.close()
        os.close(life_r)
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
        if self._popen.returncode is not None:
            self._release()

    def kill(self) -> None:
        self._popen.kill()
        self._release()

    def _release(self) -> None:
        """Close our end of the lifeline (the child, if still there, then ends)."""
        if self._lifeline >= 0:
            os.close(self._lifeline)
            self._lifeline = -1


def child_main() -> None:
    """The child's side: take the target from the pipe and run it."""
    conn = Connection(int(sys.argv[1]))
    logs = Connection(int(sys.argv[2]), readable=False)
    threading.Thread(
        target=_end_with_parent, args=(int(sys.argv[3]),), name="lifeline", daemon=True
    ).start()
    try:
        module, name, args = conn.recv()
    except (EOFError, OSError):  # the parent went away before it said what to do
        return
    target = getattr(importlib.import_module(module), name)
    target(conn, logs, *args)


def _end_with_parent(lifeline: int) -> None:
    """Block until the parent's end of the lifeline is closed, then end this process."""
    with contextlib.suppress(OSError):
        while os.read(lifeline, 1):
            pass
    os._exit(0)  # now: the parent is gone, nothing this process does is wanted any more
