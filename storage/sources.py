"""What a job's source (`youtube_url`) may name besides a web URL: an upload to vpa itself,
`upload://<id>` (storage/uploads.py)."""

from __future__ import annotations

import uuid

UPLOAD_SCHEME = "upload://"


def upload_id(url: str) -> uuid.UUID | None:
    """The upload an `upload://<id>` URL names; None for any other URL."""
    if not url.lower().startswith(UPLOAD_SCHEME):
        return None
    try:
        return uuid.UUID(url[len(UPLOAD_SCHEME) :])
    except ValueError:
        return None
