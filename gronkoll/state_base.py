"""What every table family of the state database shares: the declarative base, UTC times,
and sessions whose database errors become Gronkoll's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from gronkoll.errors import StoreError, StoreUnavailable


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """A time written in UTC and read back with its zone (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def database_errors(url: str, what: str) -> Iterator[None]:
    """Database errors inside become Gronkoll's own: the database is unavailable, or what failed."""
    try:
        yield
    except OperationalError as err:
        raise StoreUnavailable(
            f"{_safe_url(url)}: state database unavailable: {err.orig}"
        ) from None
    except SQLAlchemyError as err:
        raise StoreError(f"{_safe_url(url)}: {what}: {err}") from None


class StateConnection:
    """The state database's engine and URL, with sessions and transactions on them."""

    url: str
    engine: Engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session whose database errors become Gronkoll's own."""
        with (
            database_errors(self.url, "state database error"),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            yield session

    # -- audit log and shutdown results (gronkoll/audit.py, gronkoll/shutdown_results.py) --
    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """One transaction; a database error becomes Gronkoll's own, saying what failed."""
        with database_errors(self.url, what), self.engine.begin() as conn:
            yield conn

    def session(self) -> AbstractContextManager[Session]:
        """An ORM session whose database errors become Gronkoll's own."""
        return self._session()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
