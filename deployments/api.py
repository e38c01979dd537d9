"""The FastAPI application: REST routes. Reads go to storage; writes go to the coordinator.

`create_app(services)` is a factory so the same app runs inside a Serve replica
(deployments/ingress.py) and in tests. Routes never hold SQL and never raise a 500 for bad
input: the error handlers below turn the coordinator's and the pipeline's errors into
`{"detail": ...}` with 404, 409, 422 or 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from actors.errors import CoordinatorError
from deployments.downloads import build_download_router
from deployments.ranged import object_response
from deployments.services import CoordinatorUnavailable, IngressServices
from deployments.ws import build_ws_router
from pipeline.errors import PolicyError
from pipeline.media.urlpolicy import check_url
from storage.artifacts import ArtifactPathError
from storage.models import JobStatus, JobType
from storage.schemas import (
    ArtifactPublic,
    BulkItemResult,
    BulkJobCreate,
    BulkJobIds,
    BulkResult,
    JobCreate,
    JobEventPublic,
    JobListQuery,
    JobPublic,
    JobsPublic,
)

log = logging.getLogger("vpa.api")


def _services(request: Request) -> IngressServices:
    services: IngressServices = request.app.state.services
    return services


def _not_found(job_id: UUID) -> HTTPException:
    return HTTPException(status_code=404, detail=f"Job {job_id} not found")


def create_app(services: IngressServices) -> FastAPI:
    settings = services.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(services.coordinator.watchdog(), name="coordinator-watchdog"),
            asyncio.create_task(app.state.fanout.run(), name="progress-fanout"),
            asyncio.create_task(app.state.report_loop(), name="connection-report"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(
        title=settings.app_name,
        version="0.1.0",
        description="Video processing on Ray Serve: audio, transcripts, analysis, clips.",
        debug=settings.debug,
        lifespan=lifespan,
    )
    app.state.services = services

    @app.exception_handler(CoordinatorError)
    async def _coordinator_error(_: Request, exc: CoordinatorError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})

    @app.exception_handler(CoordinatorUnavailable)
    async def _unavailable(_: Request, exc: CoordinatorUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(PolicyError)
    async def _policy(_: Request, exc: PolicyError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.message, "code": exc.code})

    api = APIRouter(prefix="/api/v1")
    jobs = APIRouter(prefix="/jobs", tags=["jobs"])

    async def _create(svc: IngressServices, body: JobCreate) -> tuple[dict[str, Any], bool]:
        if body.idempotency_key:
            existing = await asyncio.to_thread(svc.repo.get_job_by_key, body.idempotency_key)
            if existing is not None:
                return JobPublic.model_validate(existing).model_dump(mode="json"), False
        try:
            url = await asyncio.to_thread(
                check_url, body.youtube_url, allow_private=svc.settings.allow_private_urls
            )
        except PolicyError as exc:
            if exc.code != "url_unresolvable":
                raise
            # DNS may be failing only for now: accept, and let the fetch stage (which checks
            # the address again before downloading) fail or retry the job.
            url = body.youtube_url
        data = body.model_dump(mode="json")
        data["youtube_url"] = url
        created: tuple[dict[str, Any], bool] = await svc.coordinator.call("submit", data)
        return created

    @jobs.post("/", status_code=201, response_model=JobPublic, summary="Create a processing job")
    async def create_job(body: JobCreate, request: Request, response: Response) -> Any:
        job, created = await _create(_services(request), body)
        if not created:
            response.status_code = status.HTTP_200_OK  # idempotent resubmission
        return job

    @jobs.get("/", response_model=JobsPublic, summary="List jobs with filters and pagination")
    async def list_jobs(
        request: Request,
        status_filter: JobStatus | None = None,
        job_type: JobType | None = None,
        min_priority: Annotated[int | None, Query(ge=0, le=10)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: Literal[
            "created_at", "updated_at", "priority", "progress", "status", "completed_at"
        ] = "created_at",
        order: Literal["asc", "desc"] = "desc",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        q = JobListQuery(
            status_filter=status_filter,
            job_type=job_type,
            min_priority=min_priority,
            created_after=created_after,
            created_before=created_before,
            sort_by=sort_by,
            order=order,
            limit=limit,
            offset=offset,
        )
        rows, total = await asyncio.to_thread(_services(request).repo.list_jobs, q)
        return JobsPublic(
            data=[JobPublic.model_validate(r) for r in rows],
            count=total,
            limit=limit,
            offset=offset,
        )

    @jobs.get("/queue/status", summary="Queued jobs by priority, running jobs, the limit")
    async def queue_status(request: Request) -> Any:
        return await _services(request).coordinator.call("queue_status")

    @jobs.delete("/queue/clear", summary="Cancel every pending and queued job")
    async def queue_clear(request: Request) -> Any:
        cleared = await _services(request).coordinator.call("clear_queue")
        return {"cleared": cleared, "message": f"Cancelled {cleared} pending or queued job(s)"}

    @jobs.get("/statistics", summary="Counts, success rate, durations, throughput")
    async def statistics(request: Request) -> Any:
        svc = _services(request)
        return await asyncio.to_thread(svc.repo.statistics, datetime.now(UTC))

    @jobs.post("/bulk", response_model=BulkResult, summary="Create many jobs")
    async def bulk_create(body: BulkJobCreate, request: Request) -> Any:
        svc = _services(request)
        results: list[BulkItemResult] = []
        for index, item in enumerate(body.jobs):
            try:
                job, created = await _create(svc, item)
                results.append(
                    BulkItemResult(
                        index=index,
                        job_id=UUID(job["id"]),
                        ok=True,
                        status_code=201 if created else 200,
                        job=JobPublic.model_validate(job),
                    )
                )
            except PolicyError as exc:
                results.append(
                    BulkItemResult(index=index, ok=False, status_code=422, detail=exc.message)
                )
        return _bulk(results)

    async def _bulk_each(request: Request, ids: list[UUID], method: str) -> BulkResult:
        svc = _services(request)
        results: list[BulkItemResult] = []
        for index, job_id in enumerate(ids):
            try:
                out = await svc.coordinator.call(method, str(job_id))
                job = JobPublic.model_validate(out) if isinstance(out, dict) else None
                results.append(
                    BulkItemResult(index=index, job_id=job_id, ok=True, status_code=200, job=job)
                )
            except CoordinatorError as exc:
                results.append(
                    BulkItemResult(
                        index=index,
                        job_id=job_id,
                        ok=False,
                        status_code=exc.status_code,
                        detail=exc.detail,
                    )
                )
        return _bulk(results)

    @jobs.post("/bulk/cancel", response_model=BulkResult, summary="Cancel many jobs")
    async def bulk_cancel(body: BulkJobIds, request: Request) -> Any:
        return await _bulk_each(request, body.job_ids, "cancel")

    @jobs.post("/bulk/delete", response_model=BulkResult, summary="Delete many finished jobs")
    async def bulk_delete(body: BulkJobIds, request: Request) -> Any:
        return await _bulk_each(request, body.job_ids, "delete")

    @jobs.get("/{job_id}", response_model=JobPublic, summary="Job status and results")
    async def get_job(job_id: UUID, request: Request) -> Any:
        job = await asyncio.to_thread(_services(request).repo.get_job, job_id)
        if job is None:
            raise _not_found(job_id)
        return JobPublic.model_validate(job)

    @jobs.delete("/{job_id}", summary="Delete a finished job and its artifacts")
    async def delete_job(job_id: UUID, request: Request) -> Any:
        await _services(request).coordinator.call("delete", str(job_id))
        return {"message": f"Job {job_id} deleted", "id": str(job_id)}

    @jobs.post("/{job_id}/cancel", response_model=JobPublic, summary="Cancel a job")
    async def cancel_job(job_id: UUID, request: Request) -> Any:
        return await _services(request).coordinator.call("cancel", str(job_id))

    @jobs.post("/{job_id}/retry", response_model=JobPublic, summary="Retry a failed job")
    async def retry_job(job_id: UUID, request: Request) -> Any:
        return await _services(request).coordinator.call("retry", str(job_id))

    @jobs.get("/{job_id}/events", response_model=list[JobEventPublic], summary="Event log")
    async def job_events(
        job_id: UUID,
        request: Request,
        after_seq: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> Any:
        svc = _services(request)
        if await asyncio.to_thread(svc.repo.get_job, job_id) is None:
            raise _not_found(job_id)
        events = await asyncio.to_thread(svc.repo.list_events, job_id, after_seq, limit)
        return [JobEventPublic.model_validate(e) for e in events]

    @jobs.get("/{job_id}/artifacts", response_model=list[ArtifactPublic], summary="Artifacts")
    async def job_artifacts(job_id: UUID, request: Request) -> Any:
        svc = _services(request)
        if await asyncio.to_thread(svc.repo.get_job, job_id) is None:
            raise _not_found(job_id)
        rows = await asyncio.to_thread(svc.repo.list_artifacts, job_id)
        return [ArtifactPublic.model_validate(a) for a in rows]

    @jobs.get(
        "/{job_id}/artifacts/{artifact_id}/download",
        summary="Download an artifact (HTTP Range supported)",
        response_class=StreamingResponse,
    )
    async def download_artifact(job_id: UUID, artifact_id: UUID, request: Request) -> Any:
        svc = _services(request)
        artifact = await asyncio.to_thread(svc.repo.get_artifact, job_id, artifact_id)
        if artifact is None:
            raise HTTPException(404, detail=f"Artifact {artifact_id} of job {job_id} not found")
        size = await asyncio.to_thread(_stored_size, svc, artifact.storage_path)
        if size is None:
            raise HTTPException(410, detail=f"Artifact file {artifact.filename} is gone")
        try:
            return await asyncio.to_thread(
                object_response,
                svc.store,
                artifact.storage_path,
                size,
                artifact.filename,
                artifact.content_type,
                request.headers.get("range"),
            )
        except FileNotFoundError as exc:  # deleted between the size and the read
            raise HTTPException(410, detail=f"Artifact file {artifact.filename} is gone") from exc

    api.include_router(jobs)

    @api.get("/workers", tags=["monitoring"], summary="Worker slots and model replicas")
    async def workers(request: Request) -> Any:
        svc = _services(request)
        slots = await svc.coordinator.call("workers")
        return {"workers": slots, "replicas": await asyncio.to_thread(_replicas)}

    # Aliases: the seed's endpoint table lists these relative to /api/v1 as well.
    api.add_api_route("/queue/status", queue_status, methods=["GET"], include_in_schema=False)
    api.add_api_route("/queue/clear", queue_clear, methods=["DELETE"], include_in_schema=False)
    api.add_api_route("/statistics", statistics, methods=["GET"], include_in_schema=False)

    app.include_router(api)
    app.include_router(build_download_router())
    app.include_router(build_ws_router(app, services))

    @app.get("/health", tags=["monitoring"], summary="Service health")
    async def health(request: Request) -> Any:
        svc = _services(request)
        db_ok = True
        coord: dict[str, Any] = {"ok": False}
        try:
            await asyncio.to_thread(svc.repo.count_by_status)
        except Exception as exc:
            db_ok = False
            log.warning("health: database check failed: %s", exc)
        try:
            coord = await asyncio.wait_for(svc.coordinator.call("ping"), 5.0)
        except Exception as exc:
            coord = {"ok": False, "error": str(exc)}
        healthy = db_ok and bool(coord.get("ok"))
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={
                "status": "healthy" if healthy else "unhealthy",
                "queue_running": bool(coord.get("ok")),
                "debug": svc.settings.debug,
                "environment": svc.settings.environment,
                "database": {"ok": db_ok, "backend": svc.repo.engine.dialect.name},
                "coordinator": coord,
                "replica": svc.replica_id,
            },
        )

    return app


def _stored_size(svc: IngressServices, key: str) -> int | None:
    try:
        return svc.store.size(key)
    except ArtifactPathError:
        return None


def _bulk(results: list[BulkItemResult]) -> BulkResult:
    ok = sum(1 for r in results if r.ok)
    return BulkResult(results=results, succeeded=ok, failed=len(results) - ok)


def _replicas() -> list[dict[str, Any]]:
    """Serve's view of every deployment replica (model replicas and ingress)."""
    try:
        from ray import serve

        status = serve.status()
    except Exception as exc:  # not running under Serve
        return [{"error": str(exc)}]
    out: list[dict[str, Any]] = []
    for app_name, app_status in status.applications.items():
        for name, dep in app_status.deployments.items():
            out.append(
                {
                    "application": app_name,
                    "deployment": name,
                    "status": str(dep.status.value if hasattr(dep.status, "value") else dep.status),
                    "replica_states": {
                        str(k.value if hasattr(k, "value") else k): v
                        for k, v in dep.replica_states.items()
                    },
                    "message": dep.message,
                }
            )
    return out
