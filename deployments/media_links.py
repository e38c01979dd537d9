"""Signed links to a job's downloads, for what cannot send an `Authorization` header.

A browser's `<video src>`, `<img src>` and `<a download>` send no header, so with API keys
on the web app (web/) could not play or download a job's files. A caller who sees a job may
ask for a link token (`POST /api/v1/jobs/{id}/links`): `<expiry>.<key ref>.<signature>`,
an HMAC-SHA256 of the job id, the expiry and the key that asked, under a secret derived from
`ADMIN_API_KEY` (every replica has it; changing the admin key voids every link). Sent as
`?link=<token>`, it is accepted only on the GET download routes of that one job
(`LINKED_PATH`), only until it expires (`LINK_TTL_S`), and only while the key that made
it is not revoked; the request then acts as that key. The token is not the key: a link in
a browser's history or a proxy's log opens that job's files for an hour, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from deployments.urls import API_PREFIX

LINK_TTL_S = 3600
LINK_PARAM = "link"
ADMIN_REF = "admin"
# The paths a link opens: one artifact's download, the job's zip.
LINKED_PATH = re.compile(
    rf"^{re.escape(API_PREFIX)}/jobs/[0-9a-fA-F-]+/(?:artifacts/[0-9a-fA-F-]+/)?download$"
)
_CONTEXT = b"vpa media links v1"


class BadLink(Exception):
    """The token is malformed, forged, for another job, or expired."""


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """Who made a valid link: the admin (`key_id` None) or an API key."""

    key_id: uuid.UUID | None


def _secret(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), _CONTEXT, hashlib.sha256).digest()


def _signature(admin_key: str, job_id: str, expires: int, ref: str) -> str:
    message = f"{job_id}\n{expires}\n{ref}".encode()
    digest = hmac.new(_secret(admin_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(admin_key: str, job_id: uuid.UUID, key_id: uuid.UUID | None, now: float) -> str:
    """A token for `job_id`'s downloads, made by `key_id` (None: the admin)."""
    expires = int(now) + LINK_TTL_S
    ref = ADMIN_REF if key_id is None else key_id.hex
    return f"{expires}.{ref}.{_signature(admin_key, str(job_id), expires, ref)}"


def verify(admin_key: str, token: str, job_id: str, now: float) -> LinkGrant:
    """The grant of a token presented for `job_id`'s downloads, or `BadLink`."""
    expires_text, _, rest = token.partition(".")
    ref, _, signature = rest.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not signature:
        raise BadLink("the link is malformed")
    expires = int(expires_text)
    expected = _signature(admin_key, job_id, expires, ref)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise BadLink("the link's signature is not valid")
    if now >= expires:
        raise BadLink("the link has expired")
    if ref == ADMIN_REF:
        return LinkGrant(key_id=None)
    try:
        return LinkGrant(key_id=uuid.UUID(hex=ref))
    except ValueError as exc:  # signed by us, so never in practice
        raise BadLink("the link is malformed") from exc
