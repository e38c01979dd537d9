"""Uploads: files a client sends to `POST /api/v1/uploads`, kept in the artifact store under
`uploads/<id>/<name>` for jobs to take as `upload://<id>` (their `youtube_url`, the seed's
field name). An upload belongs to the API key that made it, as a job does; one that no job
names is deleted `UPLOAD_TTL_S` after it was made (the coordinator's retention sweep).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath

import sqlalchemy as sa
from pydantic import BaseModel, computed_field
from sqlmodel import Session, col, select

from storage.artifacts import check_key
from storage.models import Job, Upload
from storage.sources import UPLOAD_SCHEME

UPLOADS_PREFIX = "uploads"
MAX_NAME_CHARS = 200
PAGE = 500  # uploads read at a time by the expiry
_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,@]")


def safe_filename(name: str | None) -> str:
    """The client's file name as vpa keeps it: its last path part only (whatever the
    client's separators), printable, at most MAX_NAME_CHARS; "upload" if nothing is left."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = unicodedata.normalize("NFC", base).replace("\x00", "")
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base) > MAX_NAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        keep = ext[:16] if dot and stem else ""
        base = base[: MAX_NAME_CHARS - len(keep) - 1] + ("." + keep if keep else "")
    return base or "upload"


def upload_key(upload_id: uuid.UUID, filename: str) -> str:
    """The store key of an upload's file."""
    return check_key(f"{UPLOADS_PREFIX}/{upload_id}/{filename}")


def upload_prefix(upload_id: uuid.UUID) -> str:
    """The key prefix of an upload's file (a store key has no trailing slash)."""
    return f"{UPLOADS_PREFIX}/{uuid.UUID(str(upload_id))}"


class UploadPublic(BaseModel):
    """What `POST /api/v1/uploads` answers."""

    id: uuid.UUID
    filename: str
    size_bytes: int
    content_type: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """What a job takes as its `youtube_url`."""
        return f"{UPLOAD_SCHEME}{self.id}"


class UploadRepository:
    """The `uploads` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def add(self, upload: Upload) -> Upload:
        with self._session() as session:
            session.add(upload)
            session.commit()
            return upload

    def get(self, upload_id: uuid.UUID) -> Upload | None:
        with self._session() as session:
            return session.get(Upload, upload_id)

    def unreferenced_before(self, made_before: datetime, limit: int) -> list[Upload]:
        """Up to `limit` uploads made before `made_before` that no job names, oldest first
        (read a page at a time, so old uploads that jobs still name never hide the rest)."""
        found: list[Upload] = []
        after: tuple[datetime, uuid.UUID] | None = None
        with self._session() as session:
            while len(found) < limit:
                stmt = select(Upload).where(col(Upload.created_at) < made_before)
                if after is not None:
                    stmt = stmt.where(sa.tuple_(col(Upload.created_at), col(Upload.id)) > after)
                page = list(
                    session.exec(
                        stmt.order_by(col(Upload.created_at), col(Upload.id)).limit(PAGE)
                    ).all()
                )
                if not page:
                    break
                urls = [f"{UPLOAD_SCHEME}{u.id}" for u in page]
                named = set(
                    session.exec(select(Job.youtube_url).where(col(Job.youtube_url).in_(urls)))
                )
                found += [u for u in page if f"{UPLOAD_SCHEME}{u.id}" not in named]
                after = (page[-1].created_at, page[-1].id)
        return found[:limit]

    def delete(self, upload_ids: Sequence[uuid.UUID]) -> None:
        if upload_ids:
            with self._session() as session:
                session.execute(sa.delete(Upload).where(col(Upload.id).in_(list(upload_ids))))
                session.commit()
