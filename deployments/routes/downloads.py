"""`GET /api/v1/jobs/{id}/download`: every artifact of a job as one zip, streamed.

The archive holds the files under their artifact names plus `job.json` (the job as
`GET /jobs/{id}` shows it, and the list of artifacts). A file that vanished from the store
is left out and named in `job.json` under `missing`, so a partial store never breaks the
download. `?kind=clip&kind=clip_thumbnail` narrows it to some kinds.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from deployments.deps import JobDep, RepoDep, StoreDep, bind_request_job
from deployments.routes.artifacts import evicted_note
from deployments.urls import public_job
from deployments.zip_stream import ZipMember, iter_zip
from storage.artifacts import ArtifactStore, job_prefix
from storage.models import Artifact
from storage.schemas import ArtifactPublic, JobPublic

MANIFEST = "job.json"

router = APIRouter(prefix="/jobs", tags=["artifacts"], dependencies=[Depends(bind_request_job)])


def _members(store: ArtifactStore, job: JobPublic, artifacts: list[Artifact]) -> list[ZipMember]:
    members: list[ZipMember] = []
    missing: list[str] = []
    stored = set(store.list_keys(job_prefix(job.id)))  # one listing, not a request per file
    for artifact in artifacts:
        if artifact.storage_path not in stored:
            missing.append(artifact.filename)
            continue
        members.append(
            ZipMember(
                arcname=artifact.filename, chunks=partial(store.iter_bytes, artifact.storage_path)
            )
        )
    manifest: dict[str, Any] = {
        "job": job.model_dump(mode="json"),
        "artifacts": [ArtifactPublic.model_validate(a).model_dump(mode="json") for a in artifacts],
        "missing": missing,
    }
    data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    return [ZipMember(arcname=MANIFEST, data=data), *members]


@router.get(
    "/{job_id}/download",
    summary="All of a job's artifacts as one zip (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def download_all(
    job: JobDep,
    repo: RepoDep,
    store: StoreDep,
    kind: Annotated[list[str] | None, Query(description="Only these artifact kinds")] = None,
) -> StreamingResponse:
    artifacts = await asyncio.to_thread(repo.list_artifacts, job.id)
    if kind:
        artifacts = [a for a in artifacts if a.kind in set(kind)]
    if not artifacts:
        wanted = f" of kind {', '.join(kind)}" if kind else ""
        why = await evicted_note(repo, job.id) or " yet"
        raise HTTPException(404, detail=f"Job {job.id} has no artifacts{wanted}{why}")
    members = await asyncio.to_thread(_members, store, public_job(job), artifacts)
    return StreamingResponse(
        iter_zip(members),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="vpa-{job.id}.zip"'},
    )
