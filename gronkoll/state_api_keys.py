"""The state database's API keys: stored hashed, shown once, revoked by name."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from gronkoll.errors import StoreError
from gronkoll.state_base import Base, StateConnection, _now

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
KEY_PREFIX = "gk_"


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[int] = mapped_column(Integer, default=0)


def hash_key(key: str) -> str:
    """SHA-256 of an API key; keys are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore(StateConnection):
    """Creating, checking, listing and revoking API keys."""

    # -- API keys ------------------------------------------------------------------------
    def create_api_key(self, name: str, role: str) -> str:
        """Create a key and return it; only its hash is stored, so it is shown once."""
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._session() as s, s.begin():
            if s.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
                raise StoreError(f"an API key named {name!r} already exists")
            s.add(
                ApiKey(
                    name=name,
                    role=role,
                    prefix=key[:8],
                    key_hash=hash_key(key),
                    created_at=_now(),
                    revoked=0,
                )
            )
        return key

    def verify_api_key(self, key: str) -> ApiKey | None:
        """The key's record if it exists and is not revoked, else None."""
        with self._session() as s, s.begin():
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
            if row is None or row.revoked:
                return None
            row.last_used_at = _now()
            return row

    def list_api_keys(self) -> list[ApiKey]:
        """Every key's record (never the key itself)."""
        with self._session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke_api_key(self, name: str) -> bool:
        """Revoke a key by name; False when there is none."""
        with self._session() as s, s.begin():
            row = s.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                return False
            row.revoked = 1
            return True
