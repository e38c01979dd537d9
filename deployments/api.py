"""The FastAPI application: the resource routers of `deployments.routes`, joined.

`create_app(services)` is a factory so the same app runs inside a Serve replica
(deployments/ingress.py) and in tests; it keeps the replica's services, and its progress
fan-out, in `app.state`, where the dependencies of `deployments.deps` find them. Routes
never hold SQL and never raise a 500 for bad input: the handlers below turn the
coordinator's and the pipeline's errors into `{"detail": ...}` with 404, 409, 422 or 503
(the coordinator or the database unreachable), and write every validation error as strict
JSON (a 422, never a 500 while rendering it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from actors.errors import CoordinatorError, TooManyRequests, unavailable_detail
from deployments.auth import authenticate, document_keys
from deployments.body_limit import BodyLimit
from deployments.openai_errors import OpenAIError, http_error, limit_body, openai_error, scoped
from deployments.routes import (
    artifacts,
    downloads,
    jobs,
    keys,
    links,
    metrics,
    openai_audio,
    system,
    uploads,
    web,
    ws,
)
from deployments.services import CoordinatorUnavailable, IngressServices
from deployments.urls import API_PREFIX
from pipeline.errors import PolicyError


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Keep the coordinator alive, poll the progress hub, report socket counts."""
    services: IngressServices = app.state.services
    tasks = [
        asyncio.create_task(services.coordinator.watchdog(), name="coordinator-watchdog"),
        asyncio.create_task(app.state.fanout.run(), name="progress-fanout"),
        asyncio.create_task(ws.report_loop(app.state.fanout), name="connection-report"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def coordinator_error(_: Request, exc: CoordinatorError) -> JSONResponse:
    # 503: the coordinator could not reach the database (`DatabaseUnavailable`); 429: a
    # limit of the caller's API key, Retry-After when waiting is what helps
    headers = {"Retry-After": "1"} if exc.status_code == 503 else None
    if isinstance(exc, TooManyRequests) and exc.retry_after_s is not None:
        headers = {"Retry-After": str(math.ceil(exc.retry_after_s))}
    return JSONResponse(
        status_code=exc.status_code, content={"detail": exc.detail}, headers=headers
    )


async def coordinator_unavailable(_: Request, exc: CoordinatorUnavailable) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)})


async def database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
    # The database is down or unreachable (restarting, failed over, network): a client
    # should try again shortly, so 503, never a 500 with a driver traceback.
    return JSONResponse(
        status_code=503,
        content={"detail": unavailable_detail(exc)},
        headers={"Retry-After": "1"},
    )


async def policy_error(_: Request, exc: PolicyError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": exc.message, "code": exc.code})


def json_safe(value: Any) -> Any:
    """`value` writable as strict JSON: a refused input echoed back in a 422 may be a float
    that is not finite (`1e400` parses as inf) or text with unpaired surrogates."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, written even when the refused input is not valid JSON itself."""
    return JSONResponse(
        status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))}
    )


async def websocket_validation_error(ws: WebSocket, exc: Exception) -> None:
    """A socket with a bad query parameter gets an `error` message naming it, then 1008
    (FastAPI's default refuses the handshake, which a client sees without a reason)."""
    assert isinstance(exc, WebSocketRequestValidationError)
    await ws.accept()
    detail = json_safe(jsonable_encoder(exc.errors()))
    await ws.send_json({"type": "error", "detail": detail})
    await ws.close(code=1008, reason="invalid query parameter")


def create_app(services: IngressServices) -> FastAPI:
    settings = services.settings
    app = FastAPI(
        title=settings.app_name,
        version="0.1.0",
        description="Video processing on Ray Serve: audio, transcripts, analysis, clips.",
        debug=settings.debug,
        lifespan=lifespan,
        # each answers in OpenAI's shape on the /v1 routes (deployments/openai_errors.py)
        exception_handlers={
            CoordinatorError: scoped(coordinator_error),
            CoordinatorUnavailable: scoped(coordinator_unavailable),
            PolicyError: scoped(policy_error),
            OperationalError: scoped(database_unavailable),
            RequestValidationError: scoped(validation_error),
            StarletteHTTPException: http_error,
            OpenAIError: openai_error,
        },
    )
    app.add_exception_handler(WebSocketRequestValidationError, websocket_validation_error)
    upload = (settings.max_upload_bytes, "MAX_UPLOAD_BYTES")
    uploads_at = {f"{API_PREFIX}/uploads": upload, "/v1/audio/": upload}
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_request_bytes, larger=uploads_at, render=limit_body
    )
    app.state.services = services
    app.state.fanout = ws.hub_fanout(services)

    # The order is the OpenAPI schema's order: keep it when adding a router. Every API and
    # WebSocket route needs a key once ADMIN_API_KEY is set (deployments/auth.py); /health,
    # the docs and the web app's files stay open.
    signed_in = [Depends(authenticate)]
    api = APIRouter(prefix=API_PREFIX, dependencies=signed_in)
    api.include_router(jobs.router)
    api.include_router(artifacts.router)
    api.include_router(system.router)
    api.include_router(jobs.aliases)
    api.include_router(downloads.router)
    api.include_router(uploads.router)
    api.include_router(keys.router)
    api.include_router(links.router)
    app.include_router(api)
    # OpenAI's clients call <base_url>/v1/...: same keys (a Bearer token), OpenAI's errors
    app.include_router(openai_audio.router, dependencies=signed_in)
    app.include_router(ws.router, dependencies=signed_in)
    app.include_router(metrics.router)  # the admin key or METRICS_API_KEY (its own check)
    app.include_router(system.health_router)
    # the web app (web/): its page and files are open, its API calls carry the key
    app.include_router(web.router)
    app.mount(web.ASSETS_PREFIX, web.assets(), name="web-assets")
    if settings.admin_api_key is not None:
        document_keys(app, open_paths=["/health"])
    return app
