"""`POST /api/v1/uploads`: a media file from the client's disk, for jobs to take as
`upload://<id>` (storage/uploads.py). The multipart body is parsed as it arrives (files
spill to disk past 1 MiB), copied in chunks to the artifact store, and never held whole
in memory; a body over MAX_UPLOAD_BYTES is a 413 before it is read (deployments/body_limit)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, HTTPException, UploadFile, status

from deployments.auth import PrincipalDep
from deployments.deps import ServicesDep
from deployments.services import IngressServices
from storage.artifacts import ArtifactStore
from storage.models import Upload
from storage.uploads import UploadPublic, safe_filename, upload_key

router = APIRouter(prefix="/uploads", tags=["uploads"])
CHUNK_BYTES = 1024 * 1024


def store_upload(src: BinaryIO, store: ArtifactStore, key: str, scratch: Path) -> int:
    """Copy the parsed file into the store under `key`, through a file in `scratch` (the
    store takes files); its size."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, prefix="upload-", delete=False) as tmp:
        shutil.copyfileobj(src, tmp, CHUNK_BYTES)
        local = Path(tmp.name)
    try:
        size = local.stat().st_size
        if size == 0:
            return 0
        return store.put_file(local, key)
    finally:
        local.unlink(missing_ok=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadPublic,
    summary="Upload a media file (multipart field `file`)",
)
async def create_upload(
    file: UploadFile, principal: PrincipalDep, services: ServicesDep
) -> UploadPublic:
    """201 with `{"id", "url": "upload://<id>", "filename", "size_bytes"}`; a job takes the
    `url` as its `youtube_url`. The upload is this API key's; one no job names expires
    after UPLOAD_TTL_S."""
    row = await save_upload(file, principal.owner, services)
    if row is None:
        raise HTTPException(status_code=422, detail="the uploaded file is empty")
    return UploadPublic.model_validate(row, from_attributes=True)


async def save_upload(
    file: UploadFile, owner: str, services: IngressServices, upload_id: uuid.UUID | None = None
) -> Upload | None:
    """`file` stored as an upload of `owner` (its row added); None when it is empty."""
    row = Upload(
        id=upload_id or uuid.uuid4(),
        owner=owner,
        filename=safe_filename(file.filename),
        content_type=(file.content_type or "application/octet-stream")[:128],
        storage_path="",
    )
    row.storage_path = upload_key(row.id, row.filename)
    scratch = services.settings.scratch_path / "incoming"
    store = services.store
    row.size_bytes = await asyncio.to_thread(
        store_upload, file.file, store, row.storage_path, scratch
    )
    if row.size_bytes == 0:
        return None
    await asyncio.to_thread(services.uploads.add, row)
    return row
