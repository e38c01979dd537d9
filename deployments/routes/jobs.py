"""Jobs: create (one or many), list, read, cancel, retry, delete; the queue and statistics.

Reads go to the replica's repository; every write goes to the coordinator, whose errors
the app's handlers turn into 404/409. Static paths (`/queue/...`, `/statistics`, `/bulk...`)
are declared before `/{job_id}...` so that they match first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status

from actors.errors import CoordinatorError, TooManyRequests
from deployments.auth import Principal, PrincipalDep
from deployments.deps import (
    CoordinatorDep,
    JobDep,
    RepoDep,
    ServicesDep,
    bind_request_job,
)
from deployments.services import CoordinatorClient, IngressServices
from deployments.urls import public_job
from pipeline.errors import PolicyError
from pipeline.media.urlpolicy import check_url
from pipeline.stages import STAGE_CHAINS
from pipeline.transcription.whisper_models import english_only
from storage.bulk_schemas import BulkItemResult, BulkJobCreate, BulkJobIds, BulkResult
from storage.owners import JobOwners
from storage.schemas import (
    INT32_MAX,
    JobCreate,
    JobEventPublic,
    JobListQuery,
    JobPublic,
    JobsPublic,
)
from storage.sources import upload_id

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(bind_request_job)])


async def checked_url(url: str, allow_private: bool, field: str = "") -> str:
    """`url` normalised by the address policy, or PolicyError (a 422 with its code)."""
    try:
        return await asyncio.to_thread(check_url, url, allow_private=allow_private)
    except PolicyError as exc:
        if exc.code != "url_unresolvable":
            if field:
                raise PolicyError(f"{field}: {exc.message}", code=exc.code) from None
            raise
        # DNS may be failing only for now: accept, and let the fetch stage (or the webhook
        # sender), which checks the address again before connecting, fail or retry.
        return url


async def submit(
    services: IngressServices, body: JobCreate, caller: Principal
) -> tuple[dict[str, Any], bool]:
    """Create a job of `caller`, or find the one it made with the same idempotency key
    (keys are per owner): (the job, created). Past a limit of the caller's key, 429."""
    owner = caller.owner
    check_language(body, services.settings.whisper_model)
    check_diarization(body)
    if body.idempotency_key:
        found = await asyncio.to_thread(services.repo.get_job_by_key, body.idempotency_key, owner)
        if found is not None:
            return JobPublic.model_validate(found).model_dump(mode="json"), False
    settings = services.settings
    data = body.model_dump(mode="json")
    data["youtube_url"] = await _source(services, body.youtube_url, caller)
    if body.webhook_url is not None:
        if settings.webhook_secret is None:
            raise PolicyError(
                "webhook_url is refused: this server has no WEBHOOK_SECRET to sign webhooks "
                "with, and sends none unsigned",
                code="webhooks_disabled",
            )
        allow_private = settings.allow_private_urls
        data["webhook_url"] = await checked_url(body.webhook_url, allow_private, "webhook_url")
    limits = (caller.per_minute, caller.max_active)
    created: tuple[dict[str, Any], bool] = await services.coordinator.call(
        "submit", data, owner, *limits
    )
    return created


def transcribes(body: JobCreate) -> bool:
    """Whether the job's stage chain transcribes (every job type but audio_extraction)."""
    return "transcribe" in STAGE_CHAINS[body.job_type.value]


def check_language(body: JobCreate, default_model: str) -> None:
    """A 422 (`invalid_options`) for a non-English `options.language`, or `task` translate,
    with an English-only Whisper model (options.model_size, else WHISPER_MODEL): it would
    transcribe as English, or fail inside the model. The engine checks the loaded model
    again (a directory or hub id whose name does not say it)."""
    if not transcribes(body):
        return  # audio_extraction: no model reads the language
    language, model = body.options.language, body.options.model_size or default_model
    which = "options.model_size" if body.options.model_size else "WHISPER_MODEL"
    if body.options.task == "translate" and english_only(model):
        raise PolicyError(
            f'options.task "translate" needs a multilingual Whisper model; {model} ({which}) '
            'is English-only: choose one in options.model_size ("base", "small", "large-v3")',
            code="invalid_options",
        )
    if language not in (None, "en") and english_only(model):
        raise PolicyError(
            f"options.language {language!r} needs a multilingual Whisper model; {model} "
            f'({which}) is English-only: leave options.language null or "en", or choose '
            'a multilingual model in options.model_size ("base", "small", "large-v3")',
            code="invalid_options",
        )


def check_diarization(body: JobCreate) -> None:
    """A 422 (`invalid_options`) for `options.diarization` on a job that reads no speech."""
    if body.options.diarization and not transcribes(body):
        raise PolicyError(
            "options.diarization applies only to jobs that transcribe (transcription, "
            f"analysis, clip_generation, full_processing), not {body.job_type.value}",
            code="invalid_options",
        )


async def _source(services: IngressServices, url: str, caller: Principal) -> str:
    """The job's source as stored: an upload of the caller's (`upload://<id>`), or a URL
    the address policy allows; else a `PolicyError` (422)."""
    uploaded = upload_id(url)
    if uploaded is not None:
        upload = await asyncio.to_thread(services.uploads.get, uploaded)
        if upload is None or not caller.sees(upload.owner):  # another key's: unknown too
            raise PolicyError(
                f"no upload {uploaded} (POST /api/v1/uploads makes one)", code="upload_not_found"
            )
        return url
    return await checked_url(url, services.settings.allow_private_urls)


@router.post("/", status_code=201, response_model=JobPublic, summary="Create a processing job")
async def create_job(
    body: JobCreate, response: Response, services: ServicesDep, principal: PrincipalDep
) -> Any:
    job, created = await submit(services, body, principal)
    if not created:
        response.status_code = status.HTTP_200_OK  # idempotent resubmission
    return public_job(job)


@router.get("/", response_model=JobsPublic, summary="List jobs with filters and pagination")
async def list_jobs(
    repo: RepoDep, q: Annotated[JobListQuery, Query()], principal: PrincipalDep
) -> Any:
    rows, total = await asyncio.to_thread(repo.list_jobs, q, principal.scope)
    return JobsPublic(
        data=[public_job(r) for r in rows], count=total, limit=q.limit, offset=q.offset
    )


@router.get("/queue/status", summary="Queued jobs by priority, running jobs, the limit")
async def queue_status(
    coordinator: CoordinatorDep, principal: PrincipalDep, services: ServicesDep
) -> Any:
    """The whole queue for the admin; an API key's own jobs in it for a key."""
    report: dict[str, Any] = await coordinator.call("queue_status")
    if principal.admin:
        return report
    return await asyncio.to_thread(own_queue, report, services.owners, principal.owner)


@router.delete("/queue/clear", summary="Cancel every pending and queued job")
async def queue_clear(
    coordinator: CoordinatorDep, principal: PrincipalDep, services: ServicesDep
) -> Any:
    """Every waiting job for the admin; an API key's own for a key."""
    if principal.admin:
        cleared = await coordinator.call("clear_queue")
    else:
        mine = await asyncio.to_thread(services.owners.waiting, principal.owner)
        outcome = await bulk_each(coordinator, mine, "cancel")
        cleared = outcome.succeeded
    return {"cleared": cleared, "message": f"Cancelled {cleared} pending or queued job(s)"}


@router.get("/statistics", summary="Counts, success rate, durations, throughput")
async def statistics(repo: RepoDep, principal: PrincipalDep) -> Any:
    return await asyncio.to_thread(repo.statistics, datetime.now(UTC), principal.scope)


@router.post("/bulk", response_model=BulkResult, summary="Create many jobs")
async def bulk_create(body: BulkJobCreate, services: ServicesDep, principal: PrincipalDep) -> Any:
    results: list[BulkItemResult] = []
    for index, item in enumerate(body.jobs):
        try:
            job, created = await submit(services, item, principal)
            results.append(
                BulkItemResult(
                    index=index,
                    job_id=UUID(job["id"]),
                    ok=True,
                    status_code=201 if created else 200,
                    job=public_job(job),
                )
            )
        except PolicyError as exc:
            results.append(
                BulkItemResult(index=index, ok=False, status_code=422, detail=exc.message)
            )
        except TooManyRequests as exc:  # a limit of the caller's key: this item, not all
            results.append(
                BulkItemResult(index=index, ok=False, status_code=429, detail=exc.detail)
            )
    return bulk_result(results)


async def bulk_each(
    coordinator: CoordinatorClient,
    ids: list[UUID],
    method: str,
    hidden: Collection[UUID] = (),
) -> BulkResult:
    """Call one coordinator method per job; each job's refusal is its own result. A job in
    `hidden` (another key's) is not found, as it would be alone."""
    results: list[BulkItemResult] = []
    for index, job_id in enumerate(ids):
        if job_id in hidden:
            detail = f"Job {job_id} not found"
            results.append(
                BulkItemResult(index=index, job_id=job_id, ok=False, status_code=404, detail=detail)
            )
            continue
        try:
            out = await coordinator.call(method, str(job_id))
            job = public_job(out) if isinstance(out, dict) else None
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
    return bulk_result(results)


def bulk_result(results: list[BulkItemResult]) -> BulkResult:
    ok = sum(1 for r in results if r.ok)
    return BulkResult(results=results, succeeded=ok, failed=len(results) - ok)


async def hidden_from(principal: PrincipalDep, services: ServicesDep, ids: list[UUID]) -> set[UUID]:
    """Those of `ids` that are another key's jobs (none for the admin)."""
    if principal.admin:
        return set()
    owner_of = await asyncio.to_thread(services.owners.of, ids)
    return {i for i, owner in owner_of.items() if not principal.sees(owner)}


@router.post("/bulk/cancel", response_model=BulkResult, summary="Cancel many jobs")
async def bulk_cancel(
    body: BulkJobIds, coordinator: CoordinatorDep, principal: PrincipalDep, services: ServicesDep
) -> Any:
    hidden = await hidden_from(principal, services, body.job_ids)
    return await bulk_each(coordinator, body.job_ids, "cancel", hidden)


@router.post("/bulk/delete", response_model=BulkResult, summary="Delete many finished jobs")
async def bulk_delete(
    body: BulkJobIds, coordinator: CoordinatorDep, principal: PrincipalDep, services: ServicesDep
) -> Any:
    hidden = await hidden_from(principal, services, body.job_ids)
    return await bulk_each(coordinator, body.job_ids, "delete", hidden)


@router.get("/{job_id}", response_model=JobPublic, summary="Job status and results")
async def get_job(job: JobDep) -> Any:
    return public_job(job)


# The commands below load the job first (`JobDep`): another key's job is a 404 there.
@router.delete("/{job_id}", summary="Delete a finished job and its artifacts")
async def delete_job(job: JobDep, coordinator: CoordinatorDep) -> Any:
    await coordinator.call("delete", str(job.id))
    return {"message": f"Job {job.id} deleted", "id": str(job.id)}


@router.post("/{job_id}/cancel", response_model=JobPublic, summary="Cancel a job")
async def cancel_job(job: JobDep, coordinator: CoordinatorDep) -> Any:
    return public_job(await coordinator.call("cancel", str(job.id)))


@router.post("/{job_id}/retry", response_model=JobPublic, summary="Retry a failed job")
async def retry_job(job: JobDep, coordinator: CoordinatorDep) -> Any:
    return public_job(await coordinator.call("retry", str(job.id)))


@router.get("/{job_id}/events", response_model=list[JobEventPublic], summary="Event log")
async def job_events(
    job: JobDep,
    repo: RepoDep,
    after_seq: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Any:
    events = await asyncio.to_thread(repo.list_events, job.id, after_seq, limit)
    return [JobEventPublic.model_validate(e) for e in events]


# The seed's endpoint table lists these relative to /api/v1 as well; kept out of the schema.
aliases = APIRouter()
aliases.add_api_route("/queue/status", queue_status, methods=["GET"], include_in_schema=False)
aliases.add_api_route("/queue/clear", queue_clear, methods=["DELETE"], include_in_schema=False)
aliases.add_api_route("/statistics", statistics, methods=["GET"], include_in_schema=False)


def own_queue(report: dict[str, Any], owners: JobOwners, owner: str) -> dict[str, Any]:
    """The coordinator's queue report cut down to `owner`'s jobs: their counts (from the
    database), and the ids of theirs among the report's lists; the limit and free slots
    stay the service's."""
    listed = {
        *report.get("queued_order", []),
        *report.get("waiting_for_retry", []),
        *(i for ids in report.get("queued_by_priority", {}).values() for i in ids),
        *(r["job_id"] for r in report.get("running", [])),
    }
    owner_of = owners.of([UUID(i) for i in listed])
    mine = {str(i) for i, o in owner_of.items() if o == owner}
    counts = owners.queued_by_priority(owner)
    running = [r for r in report.get("running", []) if r["job_id"] in mine]
    by_priority = {
        p: [i for i in ids if i in mine] for p, ids in report.get("queued_by_priority", {}).items()
    }
    return {
        **report,
        "queued": sum(counts.values()),
        "queued_count_by_priority": {str(p): n for p, n in sorted(counts.items(), reverse=True)},
        "queued_by_priority": {p: ids for p, ids in by_priority.items() if ids},
        "queued_order": [i for i in report.get("queued_order", []) if i in mine],
        "waiting_for_retry": [i for i in report.get("waiting_for_retry", []) if i in mine],
        "running": running,
        "running_count": len(running),
    }
