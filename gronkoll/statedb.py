"""The state database (SQLAlchemy 2, Alembic): device status, integration state, API keys,
quarantined MQTT messages and meetings.

Each table family has a module (state_devices, state_mqtt, state_api_keys; the audit log and
shutdown results in audit and shutdown_results) on the base in state_base; StateDB joins them,
and this module re-exports their names, so `from gronkoll.statedb import X` serves them all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gronkoll.errors import StoreUnavailable
from gronkoll.state_api_keys import KEY_PREFIX, ROLES, ApiKey, ApiKeyStore, Role, hash_key
from gronkoll.state_base import Base, UtcDateTime, _safe_url
from gronkoll.state_devices import DeviceStateStore, DeviceStatus, IntegrationState, StatusUpdate
from gronkoll.state_mqtt import (
    Meeting,
    MeetingEvent,
    MqttRecordStore,
    MqttSeen,
    QuarantinedMessage,
    QuarantineEntry,
)

if TYPE_CHECKING:
    from gronkoll.audit import AuditRecord

__all__ = [
    "KEY_PREFIX",
    "ROLES",
    "ApiKey",
    "Base",
    "DeviceStatus",
    "IntegrationState",
    "Meeting",
    "MeetingEvent",
    "MqttSeen",
    "QuarantineEntry",
    "QuarantinedMessage",
    "Role",
    "StateDB",
    "StatusUpdate",
    "UtcDateTime",
    "hash_key",
    "migrate",
]


class StateDB(DeviceStateStore, MqttRecordStore, ApiKeyStore):
    """The relational state store, migrated to the newest schema on open."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        """migrate_schema False: another process of this run has migrated it (no Alembic here)."""
        self.url = url
        if url.startswith("sqlite:///"):
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreUnavailable(
                    f"{folder}: cannot create the store folder: {err.strerror}"
                ) from None
        self.engine: Engine = create_engine(url, connect_args=_connect_args(url))
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            if migrate_schema:
                migrate(self.engine)
        except OperationalError as err:
            raise StoreUnavailable(
                f"{_safe_url(url)}: cannot open the state database: {err.orig}"
            ) from None

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def audit(self, **fields: Any) -> None:
        """Append one line to the audit log (the fields of gronkoll.audit.AuditRecord)."""
        from gronkoll.audit import AuditRecord, append

        append(self, [AuditRecord(**fields)])

    def audit_many(self, records: Sequence[AuditRecord]) -> None:
        """Append audit records in one transaction."""
        from gronkoll.audit import append

        append(self, records)

    def audit_log(self, **filters: Any) -> list[AuditRecord]:
        """Audit records, oldest first: start, end (aware), device, policy, limit."""
        from gronkoll.audit import query

        return query(self, **filters)


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# Alembic keeps its running context in module state: one migration at a time per process.
_MIGRATION_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with _MIGRATION_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
