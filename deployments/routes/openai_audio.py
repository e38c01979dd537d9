"""The OpenAI-compatible audio API, at `/v1` (not under /api/v1), for OpenAI's clients:
`POST /v1/audio/transcriptions`, `POST /v1/audio/translations`, `GET /v1/models`.

Each request is a job like any other: its file is stored as an upload of the caller's key
(deployments/routes/uploads.py), a `transcription` job on `upload://<id>` is submitted
through `jobs.submit` (the key's limits, ownership and the queue's priorities apply; it is
in `GET /api/v1/jobs/`), and the answer comes when the job ends, rendered by
`deployments.openai_responses`. A client that goes away leaves its job running: the job
is in the job list, its transcript and subtitle files there to fetch.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from deployments.auth import Principal, PrincipalDep
from deployments.deps import ServicesDep
from deployments.openai_errors import OpenAIError
from deployments.openai_responses import (
    Granularity,
    ResponseFormat,
    Task,
    check_translatable,
    diarizing,
    model_card,
    model_ids,
    models_list,
    render,
    resolve_model,
)
from deployments.routes.jobs import check_language, submit
from deployments.routes.uploads import save_upload
from deployments.services import IngressServices
from storage.models import TERMINAL_STATUSES, Job
from storage.schemas import JobCreate
from storage.sources import UPLOAD_SCHEME

router = APIRouter(prefix="/v1", tags=["openai"])
POLL_S = 0.25  # how often a waiting request reads its job
JOB_ID_HEADER = "X-Vpa-Job-Id"
# Our option names for OpenAI's form fields, to name the field in a 400
FORM_FIELDS = {"initial_prompt": "prompt", "word_timestamps": "timestamp_granularities[]"}


@dataclass(frozen=True)
class AudioRequest:
    """One transcription or translation request's form, `file` aside."""

    model: str
    task: Task
    response_format: ResponseFormat = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    granularities: tuple[Granularity, ...] = field(default=())
    priority: int = 5

    def options(self) -> dict[str, Any]:
        """The transcription job's options."""
        options: dict[str, Any] = {
            "task": self.task,
            "word_timestamps": "word" in self.granularities,
        }
        if self.language:
            options["language"] = self.language
        if self.prompt:
            options["initial_prompt"] = self.prompt
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if diarizing(self.model, self.response_format):
            options["diarization"] = True
        return options


async def wait_for_end(
    read: Callable[[], Awaitable[Job | None]],
    timeout_s: float,
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
) -> Job | None:
    """The job once it has ended; None when the client went away first; a 504 past
    `timeout_s` (the job carries on)."""
    deadline = clock() + timeout_s
    while True:
        job = await read()
        if job is None:
            raise OpenAIError(500, "the job was deleted before it ended")
        if job.status in TERMINAL_STATUSES:
            return job
        if await disconnected():
            return None
        if clock() >= deadline:
            raise OpenAIError(
                504,
                f"job {job.id} has not ended within JOB_TIMEOUT ({timeout_s:g} s); it carries "
                f"on: GET /api/v1/jobs/{job.id}",
                code="timeout",
            )
        await asyncio.sleep(poll_s)


def job_body(form: AudioRequest, source: str) -> JobCreate:
    """The job a request makes, or a 400 naming the form field that is not valid."""
    try:
        return JobCreate.model_validate(
            {
                "youtube_url": source,
                "job_type": "transcription",
                "priority": form.priority,
                "options": form.options(),
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][-1]) if error["loc"] else "options"
        param = FORM_FIELDS.get(name, name)
        raise OpenAIError(400, f"{param}: {error['msg']}", param, "invalid_value") from None


async def answer(
    request: Request,
    file: UploadFile,
    form: AudioRequest,
    services: IngressServices,
    principal: Principal,
) -> Response:
    """Store the file, run the job, answer in `form.response_format`."""
    settings = services.settings
    resolve_model(form.model, settings.whisper_model)
    if form.task == "translate":
        check_translatable(settings.whisper_model)
    upload_id = uuid.uuid4()
    body = job_body(form, f"{UPLOAD_SCHEME}{upload_id}")  # checked before the file is stored
    check_language(body, settings.whisper_model)
    if await save_upload(file, principal.owner, services, upload_id) is None:
        raise OpenAIError(400, "the uploaded file is empty", "file", "empty_file")
    job, _ = await submit(services, body, principal)
    job_id = uuid.UUID(job["id"])
    ended = await wait_for_end(
        lambda: asyncio.to_thread(services.repo.get_job, job_id),
        settings.job_timeout,
        request.is_disconnected,
    )
    if ended is None:  # nobody is listening; the job carries on
        return Response(status_code=499)
    content, media_type = render(ended, form.response_format, form.task, form.granularities)
    headers = {JOB_ID_HEADER: str(job_id)}
    if isinstance(content, dict):
        return JSONResponse(content, headers=headers)
    return PlainTextResponse(content, media_type=media_type, headers=headers)


Granularities = Annotated[list[Granularity], Form(alias="timestamp_granularities[]")]
Temperature = Annotated[float | None, Form(ge=0.0, le=1.0)]
Priority = Annotated[int, Form(ge=0, le=10, description="The job's priority (vpa's own)")]


@router.post("/audio/transcriptions", summary="Transcribe audio (OpenAI-compatible)")
async def create_transcription(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    file: UploadFile,
    model: Annotated[str, Form()],
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Temperature = None,
    timestamp_granularities: Granularities = [],  # noqa: B006 (FastAPI copies defaults)
    priority: Priority = 5,
) -> Response:
    """The speech of `file` as text, in the language spoken (or `language`)."""
    form = AudioRequest(
        model, "transcribe", response_format, language, prompt, temperature,
        tuple(timestamp_granularities), priority,
    )  # fmt: skip
    return await answer(request, file, form, services, principal)


@router.post("/audio/translations", summary="Translate audio into English (OpenAI-compatible)")
async def create_translation(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    file: UploadFile,
    model: Annotated[str, Form()],
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Temperature = None,
    priority: Priority = 5,
) -> Response:
    """The speech of `file` as English text; needs a multilingual WHISPER_MODEL."""
    form = AudioRequest(
        model, "translate", response_format, None, prompt, temperature, (), priority
    )
    return await answer(request, file, form, services, principal)


@router.get("/models", summary="The models `model` may name (OpenAI-compatible)")
async def list_models(services: ServicesDep) -> dict[str, Any]:
    return models_list(services.settings.whisper_model)


@router.get("/models/{model_id}", summary="One model (OpenAI-compatible)")
async def get_model(model_id: str, services: ServicesDep) -> dict[str, Any]:
    if model_id not in model_ids(services.settings.whisper_model):
        raise OpenAIError(404, f"The model `{model_id}` does not exist", "model", "model_not_found")
    return model_card(model_id)
