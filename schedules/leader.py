"""One active scheduler: a lock the active node holds for its whole life.

APScheduler 3 must not share a job store between running schedulers, so when several
Gronkoll nodes share one PostgreSQL state database, only the node holding a session-level
advisory lock (``pg_try_advisory_lock``, on a connection kept open for the scheduler's life)
runs the scheduler; the others try again every few seconds. When the active node dies, even
by SIGKILL, PostgreSQL ends its session and the lock with it, and a standby takes over. On
SQLite (one node) an exclusive ``flock`` on a file beside the database does the same between
processes of that machine; the kernel releases it when the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)
LOCK_NAME = "gronkoll-scheduler"


def advisory_key(name: str = LOCK_NAME) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock, from a name."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LeaderLock(Protocol):
    """A lock only one scheduler holds at a time."""

    description: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it now."""
        ...

    def held(self) -> bool:
        """Whether this process still holds the lock (its connection or file is alive)."""
        ...

    def release(self) -> None:
        """Give the lock up (also when it was never taken)."""
        ...


class PostgresAdvisoryLock:
    """pg_try_advisory_lock on a dedicated connection held while the lock is."""

    def __init__(self, url: str, key: int | None = None) -> None:
        self.key = advisory_key() if key is None else key
        safe = make_url(url).render_as_string(hide_password=True)
        self.description = f"PostgreSQL advisory lock {self.key} on {safe}"
        # One connection, never shared, never recycled under us: the lock lives in its session.
        self._engine: Engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it."""
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            got = self._conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar_one()
            self._conn.commit()  # end the transaction; the session-level lock stays
        except SQLAlchemyError as err:
            log.warning("cannot reach the state database for the scheduler lock: %s", err)
            self._drop()
            return False
        return bool(got)

    def held(self) -> bool:
        """True while the connection holding the lock still answers."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar_one()
            self._conn.commit()
        except SQLAlchemyError as err:
            log.error("lost the connection that holds the scheduler lock: %s", err)
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Unlock and close the connection."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._conn.commit()
            except SQLAlchemyError as err:
                log.warning(
                    "could not unlock the scheduler lock (it ends with the session): %s", err
                )
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                log.debug("closing a broken lock connection failed", exc_info=True)
            self._conn = None


class FileLock:
    """An exclusive flock on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            return False
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return True

    def held(self) -> bool:
        """A flock lasts as long as the file stays open."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the file."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def leader_lock(state_url: str) -> LeaderLock:
    """The lock for this state database: advisory on PostgreSQL, a file beside SQLite."""
    url = make_url(state_url)
    if url.get_backend_name() == "postgresql":
        return PostgresAdvisoryLock(state_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileLock(Path(f"{url.database}.scheduler-lock"))
    raise ValueError(
        f"the scheduler needs PostgreSQL or a SQLite file as state database, not {url.drivername}"
    )
