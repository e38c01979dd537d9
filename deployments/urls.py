"""The links the API hands out: built in `storage.links`, which the webhooks the coordinator
sends (actors/webhooks.py) share, so a job reads the same in a response and in a webhook."""

from storage.links import (
    API_PREFIX,
    CLIP_LINK_FIELDS,
    artifact_download_url,
    clip_with_links,
    job_with_links,
    public_job,
)

__all__ = [
    "API_PREFIX",
    "CLIP_LINK_FIELDS",
    "artifact_download_url",
    "clip_with_links",
    "job_with_links",
    "public_job",
]
