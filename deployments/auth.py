"""Who is calling: the API key of a request or WebSocket, checked on every one.

With `ADMIN_API_KEY` unset, authentication is off and every caller is the anonymous
admin (the service as it was for one trusted user). With it set, every API and WebSocket
route needs a key, sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`; a WebSocket
may also send `?api_key=<key>` (a browser cannot set headers there). The admin key is
`ADMIN_API_KEY` itself; the others are rows of `api_keys` (storage/api_keys.py), looked up on
every call, so a revoked key is refused at once by every replica. A GET download may instead
carry `?link=<token>`, a signed link to one job's files (deployments/media_links.py).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, status
from starlette.requests import HTTPConnection

from deployments import media_links
from deployments.services import IngressServices
from storage.models import ADMIN_OWNER

MISSING = "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
INVALID = "the API key is not valid (unknown or revoked)"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a key of the `api_keys` table (`key_id`), or the admin."""

    key_id: uuid.UUID | None
    name: str
    admin: bool
    per_minute: int | None = None  # job creations a minute; None: no limit
    max_active: int | None = None  # jobs queued or processing at once; None: no limit

    @property
    def owner(self) -> str:
        """`Job.owner` of the jobs this caller makes."""
        return ADMIN_OWNER if self.key_id is None else str(self.key_id)

    @property
    def scope(self) -> str | None:
        """The owner whose jobs this caller sees; None: every job (the admin)."""
        return None if self.admin else self.owner

    def sees(self, owner: str) -> bool:
        return self.admin or owner == self.owner


ANONYMOUS = Principal(key_id=None, name="anonymous", admin=True)


def presented_key(conn: HTTPConnection) -> str | None:
    """The key a request or WebSocket carries, if any."""
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header = conn.headers.get("x-api-key", "").strip()
    if header:
        return header
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("api_key") or None
    return None


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


async def authenticate(conn: HTTPConnection) -> Principal:
    """The caller of this request, or 401. Kept on `conn.state.principal` for the routes."""
    services: IngressServices = conn.app.state.services
    admin_key = services.settings.admin_api_key
    if admin_key is None:
        principal = ANONYMOUS
    else:
        key = presented_key(conn)
        if key is None:
            principal = await linked_principal(conn, services, admin_key)
        elif hmac.compare_digest(key.encode(), admin_key.encode()):
            principal = Principal(key_id=None, name="admin", admin=True)
        else:
            row = await asyncio.to_thread(services.keys.active, key)
            if row is None:
                raise unauthorized(INVALID, "invalid_token")
            settings = services.settings
            principal = Principal(
                key_id=row.id,
                name=row.name,
                admin=False,
                per_minute=row.rate_limit_per_minute or settings.rate_limit_per_minute,
                max_active=row.max_active_jobs or settings.max_active_jobs_per_key,
            )
    conn.state.principal = principal
    return principal


def linked_route(conn: HTTPConnection) -> bool:
    """Whether this is a GET of a route a signed link opens."""
    path = conn.scope.get("path", "")
    return conn.scope.get("method") == "GET" and media_links.LINKED_PATH.match(path) is not None


async def linked_principal(
    conn: HTTPConnection, services: IngressServices, admin_key: str
) -> Principal:
    """The key that made the request's signed link, or 401 (no link, a bad one, a route
    links do not open, a revoked key)."""
    token = conn.query_params.get(media_links.LINK_PARAM)
    if not token or not linked_route(conn):
        raise unauthorized(MISSING)
    try:
        job_id = str(uuid.UUID(str(conn.path_params.get("job_id", ""))))
        grant = media_links.verify(admin_key, token, job_id, time.time())
    except (ValueError, media_links.BadLink) as exc:
        raise unauthorized(str(exc), "invalid_token") from exc
    if grant.key_id is None:
        return Principal(key_id=None, name="admin", admin=True)
    row = await asyncio.to_thread(services.keys.active_by_id, grant.key_id)
    if row is None:
        raise unauthorized(INVALID, "invalid_token")
    return Principal(key_id=row.id, name=row.name, admin=False)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep, conn: HTTPConnection) -> Principal:
    """The admin key, or 403 (409 while keys are off: there is nothing to manage)."""
    services: IngressServices = conn.app.state.services
    if services.settings.admin_api_key is None:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail="API keys are off: set ADMIN_API_KEY to turn them on",
        )
    if not principal.admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only the admin key (ADMIN_API_KEY) manages API keys",
        )
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_keys(app: FastAPI, open_paths: Collection[str]) -> None:
    """Say in the OpenAPI schema that every operation but those of `open_paths` needs a
    key (/docs then has its "Authorize" button)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
            for path in open_paths:
                for operation in schema["paths"].get(path, {}).values():
                    operation["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
