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
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from deployments.services import IngressServices
from deployments.zip_stream import ZipMember, iter_zip
from storage.artifacts import job_prefix
from storage.models import Artifact
from storage.schemas import ArtifactPublic, JobPublic

MANIFEST = "job.json"


def _members(
    services: IngressServices, job: JobPublic, artifacts: list[Artifact]
) -> list[ZipMember]:
    members: list[ZipMember] = []
    missing: list[str] = []
    store = services.store
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


def build_download_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/jobs", tags=["artifacts"])

    @router.get(
        "/{job_id}/download",
        summary="All of a job's artifacts as one zip (streamed)",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/zip": {}}}},
    )
    async def download_all(
        job_id: UUID,
        request: Request,
        kind: Annotated[list[str] | None, Query(description="Only these artifact kinds")] = None,
    ) -> StreamingResponse:
        services: IngressServices = request.app.state.services
        job = await asyncio.to_thread(services.repo.get_job, job_id)
        if job is None:
            raise HTTPException(404, detail=f"Job {job_id} not found")
        artifacts = await asyncio.to_thread(services.repo.list_artifacts, job_id)
        if kind:
            artifacts = [a for a in artifacts if a.kind in set(kind)]
        if not artifacts:
            wanted = f" of kind {', '.join(kind)}" if kind else ""
            raise HTTPException(404, detail=f"Job {job_id} has no artifacts{wanted} yet")
        members = await asyncio.to_thread(
            _members, services, JobPublic.model_validate(job), artifacts
        )
        return StreamingResponse(
            iter_zip(members),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="vpa-{job_id}.zip"'},
        )

    return router
