"""The links the API hands out, each built by one function here.

The pipeline records artifact ids; it knows no HTTP route. A job's clips name their files
by id (`generated_clips[i]["artifacts"]`: video, thumbnail, subtitles), and every route that
returns a job turns those ids into download links on the way out (`public_job`,
`job_with_links`), so a route change is made here and nowhere else. It lives in storage,
not deployments, because the coordinator's webhooks (actors/webhooks.py) send the job as
the API shows it; `deployments.urls` re-exports it for the routes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from storage.schemas import JobPublic

API_PREFIX = "/api/v1"

# A clip's artifact kinds (the keys of its `artifacts`) and the field each one's link fills.
CLIP_LINK_FIELDS = {
    "video": "video_url",
    "thumbnail": "thumbnail_url",
    "subtitles": "subtitles_url",
}


def artifact_download_url(job_id: UUID | str, artifact_id: UUID | str) -> str:
    """`GET` one artifact's bytes (Range supported)."""
    return f"{API_PREFIX}/jobs/{job_id}/artifacts/{artifact_id}/download"


def clip_with_links(job_id: UUID | str, clip: dict[str, Any]) -> dict[str, Any]:
    """A `generated_clips` entry with a download link for each artifact it names."""
    ids = clip.get("artifacts")
    if not isinstance(ids, dict):
        return clip
    links = {
        field: artifact_download_url(job_id, ids[kind])
        for kind, field in CLIP_LINK_FIELDS.items()
        if ids.get(kind)
    }
    return {**clip, **links}


def job_with_links(data: dict[str, Any]) -> dict[str, Any]:
    """A job as JSON (`JobPublic.model_dump(mode="json")`) with its clips' links."""
    clips = data.get("generated_clips")
    if not clips:
        return data
    return {**data, "generated_clips": [clip_with_links(data["id"], c) for c in clips]}


def public_job(source: Any) -> JobPublic:
    """A job (a table row or the coordinator's dict) as the API returns it, with links."""
    job = JobPublic.model_validate(source)
    if not job.generated_clips:
        return job
    clips = [clip_with_links(job.id, c) for c in job.generated_clips]
    return job.model_copy(update={"generated_clips": clips})
