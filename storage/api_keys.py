"""API keys: how a key is made, stored (hashed) and looked up, and what the API shows of it.

A key is `vpa_` and 43 random URL-safe characters (256 bits). Only its SHA-256 is stored:
a key this random needs no slow password hash, and a fast one keeps the lookup on every
request cheap. The key itself is shown once, in the answer to its creation. A deleted key
is revoked (`revoked_at` set), not removed, so the jobs it made keep naming their owner.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from storage.models import ApiKey
from storage.schemas import UTCDatetime

KEY_PREFIX = "vpa_"
SHOWN_CHARS = 8  # of the key, after its prefix: what lists show to tell keys apart


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyCreate(BaseModel):
    """What the admin sends to make a key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Overrides RATE_LIMIT_PER_MINUTE"
    )
    max_active_jobs: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Overrides MAX_ACTIVE_JOBS_PER_KEY"
    )


class ApiKeyPublic(BaseModel):
    """A key as lists show it: never the key itself."""

    id: uuid.UUID
    name: str
    key_prefix: str = Field(description="The key's first characters, to tell keys apart")
    created_at: UTCDatetime
    revoked_at: UTCDatetime | None = None
    rate_limit_per_minute: int | None = Field(
        default=None, description="Its own limit; null: RATE_LIMIT_PER_MINUTE applies"
    )
    max_active_jobs: int | None = Field(
        default=None, description="Its own limit; null: MAX_ACTIVE_JOBS_PER_KEY applies"
    )


class ApiKeyCreated(ApiKeyPublic):
    """The answer to a creation: the only time the key itself is shown."""

    key: str


class ApiKeyRepository:
    """The `api_keys` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def create(self, body: ApiKeyCreate, now: datetime) -> tuple[ApiKey, str]:
        """A new key; `(row, key)`, the key in clear only here."""
        key = new_key()
        row = ApiKey(
            name=body.name,
            rate_limit_per_minute=body.rate_limit_per_minute,
            max_active_jobs=body.max_active_jobs,
            key_hash=key_hash(key),
            key_prefix=key[: len(KEY_PREFIX) + SHOWN_CHARS],
            created_at=now,
        )
        with self._session() as session:
            session.add(row)
            session.commit()
        return row, key

    def active(self, key: str) -> ApiKey | None:
        """The key's row if it exists and is not revoked."""
        stmt = select(ApiKey).where(
            ApiKey.key_hash == key_hash(key), col(ApiKey.revoked_at).is_(None)
        )
        with self._session() as session:
            return session.exec(stmt).first()

    def active_by_id(self, key_id: uuid.UUID) -> ApiKey | None:
        """The key with this id if it exists and is not revoked."""
        with self._session() as session:
            row = session.get(ApiKey, key_id)
            return row if row is not None and row.revoked_at is None else None

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too, newest first."""
        stmt = select(ApiKey).order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
        with self._session() as session:
            return list(session.exec(stmt).all())

    def revoke(self, key_id: uuid.UUID, now: datetime) -> ApiKey | None:
        """Revoke a key (again is a no-op); None if there is no such key."""
        with self._session() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = now
                session.add(row)
                session.commit()
            return row
