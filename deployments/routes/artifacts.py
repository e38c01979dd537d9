"""A job's artifacts: the list, and one artifact's bytes with HTTP Range support."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from deployments.deps import JobDep, RepoDep, StoreDep, bind_request_job
from deployments.ranged import object_response
from storage.artifacts import ArtifactPathError, ArtifactStore
from storage.models import EventType
from storage.repository import JobRepository
from storage.schemas import ArtifactPublic, iso_z

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(bind_request_job)])


@router.get("/{job_id}/artifacts", response_model=list[ArtifactPublic], summary="Artifacts")
async def job_artifacts(job: JobDep, repo: RepoDep) -> Any:
    rows = await asyncio.to_thread(repo.list_artifacts, job.id)
    return [ArtifactPublic.model_validate(a) for a in rows]


@router.get(
    "/{job_id}/artifacts/{artifact_id}/download",
    summary="Download an artifact (HTTP Range supported)",
    response_class=StreamingResponse,
)
async def download_artifact(
    job: JobDep, artifact_id: UUID, request: Request, repo: RepoDep, store: StoreDep
) -> Any:
    job_id = job.id  # loaded first: another key's job is a 404 here too
    artifact = await asyncio.to_thread(repo.get_artifact, job_id, artifact_id)
    if artifact is None:
        missing = f"Artifact {artifact_id} of job {job_id} not found"
        raise HTTPException(404, detail=missing + await evicted_note(repo, job_id))
    gone = HTTPException(410, detail=f"Artifact file {artifact.filename} is gone")
    size = await asyncio.to_thread(stored_size, store, artifact.storage_path)
    if size is None:
        raise gone
    try:
        return await asyncio.to_thread(
            object_response,
            store,
            artifact.storage_path,
            size,
            artifact.filename,
            artifact.content_type,
            request.headers.get("range"),
        )
    except FileNotFoundError as exc:  # deleted between the size and the read
        raise gone from exc


def stored_size(store: ArtifactStore, key: str) -> int | None:
    """The object's size in bytes; None when it is missing or the key is not valid."""
    try:
        return store.size(key)
    except ArtifactPathError:
        return None


async def evicted_note(repo: JobRepository, job_id: UUID) -> str:
    """Why a job has no artifact rows, if the retention sweep deleted them ('' otherwise)."""
    evicted = await asyncio.to_thread(repo.latest_event, job_id, EventType.artifacts_evicted)
    if evicted is None:
        return ""
    return (
        f": the job's artifacts were deleted at {iso_z(evicted.created_at)} to keep the "
        "artifact store under ARTIFACT_MAX_BYTES"
    )
