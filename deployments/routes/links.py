"""`POST /api/v1/jobs/{id}/links`: a signed link to a job's downloads (see
deployments/media_links.py), for players and download links that send no header."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from deployments import media_links
from deployments.auth import PrincipalDep
from deployments.deps import JobDep, SettingsDep, bind_request_job
from storage.schemas import UTCDatetime

router = APIRouter(prefix="/jobs", tags=["artifacts"], dependencies=[Depends(bind_request_job)])


class MediaLink(BaseModel):
    """What to append to the job's download URLs (`url + "?" + query`)."""

    query: str = Field(description='"link=<token>"; empty while API keys are off')
    expires_at: UTCDatetime | None = Field(description="When the link stops working")


@router.post(
    "/{job_id}/links",
    response_model=MediaLink,
    summary="A signed link to the job's downloads (for <video src>, <a download>)",
)
async def job_links(job: JobDep, principal: PrincipalDep, settings: SettingsDep) -> MediaLink:
    admin_key = settings.admin_api_key
    if admin_key is None:  # keys off: the download URLs work as they are
        return MediaLink(query="", expires_at=None)
    now = time.time()
    token = media_links.sign(admin_key, job.id, principal.key_id, now)
    expires = datetime.fromtimestamp(int(now) + media_links.LINK_TTL_S, UTC)
    return MediaLink(query=f"{media_links.LINK_PARAM}={token}", expires_at=expires)
