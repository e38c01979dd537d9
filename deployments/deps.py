"""What routes depend on, as `Annotated` aliases (the pattern of FastAPI's full-stack
template, `app/api/deps.py`): a route declares `repo: RepoDep` or `job: JobDep` and never
reaches into the app's state itself.

The roots take an `HTTPConnection`, not a `Request`, so the aliases serve WebSocket routes too.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from config.logging import bind_job
from config.settings import Settings
from deployments.auth import PrincipalDep
from deployments.fanout import Fanout
from deployments.services import CoordinatorClient, IngressServices
from storage.artifacts import ArtifactStore
from storage.models import Job
from storage.repository import JobRepository


async def get_services(conn: HTTPConnection) -> IngressServices:
    services: IngressServices = conn.app.state.services
    return services


ServicesDep = Annotated[IngressServices, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_repo(services: ServicesDep) -> JobRepository:
    return services.repo


async def get_store(services: ServicesDep) -> ArtifactStore:
    return services.store


async def get_coordinator(services: ServicesDep) -> CoordinatorClient:
    return services.coordinator


async def get_fanout(conn: HTTPConnection) -> Fanout:
    fanout: Fanout = conn.app.state.fanout
    return fanout


SettingsDep = Annotated[Settings, Depends(get_settings)]
RepoDep = Annotated[JobRepository, Depends(get_repo)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
CoordinatorDep = Annotated[CoordinatorClient, Depends(get_coordinator)]
FanoutDep = Annotated[Fanout, Depends(get_fanout)]


def job_not_found(job_id: UUID) -> HTTPException:
    return HTTPException(status_code=404, detail=f"Job {job_id} not found")


async def load_job(job_id: UUID, repo: RepoDep, principal: PrincipalDep) -> Job:
    """The job named by the path's `job_id`, or 404: also when it is another key's."""
    job = await asyncio.to_thread(repo.get_job, job_id)
    if job is None or not principal.sees(job.owner):
        raise job_not_found(job_id)
    return job


JobDep = Annotated[Job, Depends(load_job)]


async def bind_request_job(conn: HTTPConnection) -> None:
    """The request's log lines carry the job id of its path (`/jobs/{job_id}/...`), as the
    coordinator's and the stage tasks' lines for that job do."""
    bind_job(conn.path_params.get("job_id"))
