"""The OpenAI-compatible routes (deployments/routes/openai_audio.py) on fakes: a coordinator
whose "worker" ends each submitted job at once, as `finish` says; Ray is never started."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deployments.api import create_app
from deployments.openai_errors import OpenAIError
from deployments.routes.openai_audio import JOB_ID_HEADER, wait_for_end
from deployments.services import IngressServices
from storage.models import EventType, Job, JobStatus, JobType
from storage.repository import JobRepository
from storage.uploads import UploadRepository
from tests.unit.test_api import T0, FakeCoordinator
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, make_services
from tests.unit.test_api_keys import repo as repo  # the fixture
from tests.unit.test_openai_responses import SEGMENTS

AUDIO = ("talk.wav", b"RIFF" + b"\0" * 100, "audio/wav")
Finish = Callable[[JobRepository, uuid.UUID], None]


def end(repo: JobRepository, job_id: uuid.UUID, status: JobStatus, **fields: Any) -> None:
    """Move a job to `status` through the states a worker takes it through."""
    steps = [(JobStatus.queued, EventType.queued), (JobStatus.processing, EventType.started)]
    last = {
        JobStatus.completed: EventType.completed,
        JobStatus.failed: EventType.failed,
        JobStatus.cancelled: EventType.cancelled,
    }[status]
    for moved_to, event in [*steps, (status, last)]:
        extra = fields if moved_to is status else {}
        assert repo.transition(job_id, event=event, fields={"status": moved_to, **extra}, now=T0)


def completes(repo: JobRepository, job_id: uuid.UUID) -> None:
    end(
        repo,
        job_id,
        JobStatus.completed,
        transcript=" Hello there. General Kenobi.",
        segments=SEGMENTS,
        language="en",
        duration=4.0,
    )


class WorkingCoordinator(FakeCoordinator):
    """Submits as FakeCoordinator does, then ends the job with `finish`."""

    def __init__(self, repo: JobRepository, finish: Finish) -> None:
        super().__init__(repo)
        self.finish = finish
        self.submitted: list[dict[str, Any]] = []

    async def call(self, method: str, *args: Any) -> Any:
        result = await super().call(method, *args)
        if method == "submit":
            self.submitted.append(args[0])
            self.finish(self.repo, uuid.UUID(result[0]["id"]))
        return result


def app_with(
    tmp_path: Path, repo: JobRepository, finish: Finish = completes, **settings: Any
) -> tuple[TestClient, WorkingCoordinator]:
    services: IngressServices = make_services(tmp_path, repo, scratch_dir=str(tmp_path), **settings)
    coordinator = WorkingCoordinator(repo, finish)
    services.coordinator = coordinator  # type: ignore[assignment]
    return TestClient(create_app(services)), coordinator


@pytest.fixture
def client(tmp_path: Path, repo: JobRepository) -> TestClient:
    return app_with(tmp_path, repo)[0]


def transcribe(client: TestClient, **form: Any) -> Any:
    data = {"model": "whisper-1", **form}
    return client.post("/v1/audio/transcriptions", files={"file": AUDIO}, data=data)


def assert_openai_error(r: Any, status: int, param: str | None, code: str | None) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"]) == (param, code), error
    assert error["message"]
    return str(error["message"])


def test_models_lists_whisper_1_and_the_configured_model(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["whisper-1", "tiny.en", "gpt-4o-transcribe-diarize"]
    assert all(m["object"] == "model" and m["owned_by"] and m["created"] for m in body["data"])
    assert client.get("/v1/models/whisper-1").json()["id"] == "whisper-1"
    assert_openai_error(client.get("/v1/models/gpt-4"), 404, "model", "model_not_found")


@pytest.mark.parametrize("model", ["whisper-1", "tiny.en"])
def test_a_transcription_is_a_job_answered_when_it_ends(
    tmp_path: Path, repo: JobRepository, model: str
) -> None:
    client, coordinator = app_with(tmp_path, repo)
    r = transcribe(client, model=model, language="en", prompt="Kenobi", temperature="0.4")
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "Hello there. General Kenobi."}
    (submitted,) = coordinator.submitted
    assert submitted["job_type"] == "transcription" and submitted["priority"] == 5
    assert submitted["youtube_url"].startswith("upload://")
    options = submitted["options"]
    assert (options["language"], options["initial_prompt"]) == ("en", "Kenobi")
    assert (options["temperature"], options["task"], options["word_timestamps"]) == (
        0.4,
        "transcribe",
        False,
    )
    # the file is an upload of the caller's; the job is in the job list, with its priority
    upload = UploadRepository(repo.engine).get(uuid.UUID(submitted["youtube_url"][9:]))
    assert upload is not None and upload.filename == "talk.wav" and upload.size_bytes == 104
    listed = client.get("/api/v1/jobs/").json()["data"]
    assert [j["id"] for j in listed] == [r.headers[JOB_ID_HEADER]]
    assert listed[0]["status"] == "completed"


def test_formats_and_priority_reach_the_job(tmp_path: Path, repo: JobRepository) -> None:
    client, coordinator = app_with(tmp_path, repo)
    r = transcribe(client, response_format="srt", priority="9")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("1\n00:00:00,000 --> 00:00:01,500\nHello there.\n")
    r = transcribe(client, response_format="vtt")
    assert r.text.startswith("WEBVTT\n") and r.headers["content-type"].startswith("text/plain")
    assert transcribe(client, response_format="text").text == "Hello there. General Kenobi.\n"
    r = transcribe(
        client,
        response_format="verbose_json",
        **{"timestamp_granularities[]": ["word", "segment"]},
    )
    body = r.json()
    assert body["task"] == "transcribe" and len(body["words"]) == 4 and len(body["segments"]) == 2
    assert [s["priority"] for s in coordinator.submitted] == [9, 5, 5, 5]
    assert coordinator.submitted[-1]["options"]["word_timestamps"] is True


def test_an_unknown_model_is_refused_without_a_job(tmp_path: Path, repo: JobRepository) -> None:
    client, coordinator = app_with(tmp_path, repo)
    message = assert_openai_error(
        transcribe(client, model="whisper-2"), 400, "model", "model_not_found"
    )
    assert "whisper-2" in message and coordinator.submitted == []


def test_translation_with_an_english_only_model_is_a_clear_400(
    tmp_path: Path, repo: JobRepository
) -> None:
    client, coordinator = app_with(tmp_path, repo)
    r = client.post("/v1/audio/translations", files={"file": AUDIO}, data={"model": "whisper-1"})
    message = assert_openai_error(r, 400, "model", "model_not_multilingual")
    assert "multilingual" in message and "tiny.en" in message
    assert coordinator.submitted == []
    assert UploadRepository(repo.engine).unreferenced_before(T0.replace(year=2100), 10) == []


def test_translation_with_a_multilingual_model_asks_the_job_to_translate(
    tmp_path: Path, repo: JobRepository
) -> None:
    client, coordinator = app_with(tmp_path, repo, whisper_model="small")
    r = client.post(
        "/v1/audio/translations",
        files={"file": AUDIO},
        data={"model": "small", "response_format": "verbose_json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["task"] == "translate"
    assert coordinator.submitted[0]["options"]["task"] == "translate"


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"model": None}, "model"),
        ({"response_format": "xml"}, "response_format"),
        ({"temperature": "2"}, "temperature"),
        ({"language": "english please"}, "language"),
        ({"timestamp_granularities[]": "letter"}, "timestamp_granularities[]"),
        ({"priority": "11"}, "priority"),
    ],
)
def test_bad_form_fields_are_openai_400s_naming_the_field(
    client: TestClient, form: dict[str, Any], param: str
) -> None:
    data = {k: v for k, v in {"model": "whisper-1", **form}.items() if v is not None}
    r = client.post("/v1/audio/transcriptions", files={"file": AUDIO}, data=data)
    assert_openai_error(r, 400, param, "invalid_value")


def test_a_missing_or_empty_file_is_a_400(client: TestClient) -> None:
    r = client.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert_openai_error(r, 400, "file", "invalid_value")
    r = client.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", b"")}, data={"model": "whisper-1"}
    )
    assert_openai_error(r, 400, "file", "empty_file")


@pytest.mark.parametrize(
    ("status", "fields", "http", "code"),
    [
        (JobStatus.failed, {"error_code": "not_media"}, 400, "not_media"),
        (JobStatus.failed, {"error_code": "model_unavailable"}, 503, "model_unavailable"),
        (JobStatus.failed, {"error_code": "internal_error"}, 500, "internal_error"),
        (JobStatus.cancelled, {}, 409, "job_cancelled"),
    ],
)
def test_a_job_that_does_not_complete_is_an_openai_error(
    tmp_path: Path,
    repo: JobRepository,
    status: JobStatus,
    fields: dict[str, Any],
    http: int,
    code: str,
) -> None:
    def fails(repo: JobRepository, job_id: uuid.UUID) -> None:
        end(repo, job_id, status, error_message="why", **fields)

    client, _ = app_with(tmp_path, repo, finish=fails)
    r = transcribe(client)
    assert r.status_code == http and r.json()["error"]["code"] == code
    if status is JobStatus.failed:
        assert r.json()["error"]["message"] == "why"
    assert r.json()["error"]["type"] == ("server_error" if http >= 500 else "invalid_request_error")


def test_keys_are_bearer_tokens_and_a_missing_one_is_an_openai_401(
    tmp_path: Path, repo: JobRepository
) -> None:
    client, _ = app_with(tmp_path, repo, admin_api_key=ADMIN)
    r = client.get("/v1/models")
    assert_openai_error(r, 401, None, "invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert_openai_error(r, 401, None, "invalid_api_key")
    assert client.get("/v1/models", headers=ADMIN_HEADERS).status_code == 200
    assert transcribe(client).status_code == 401
    # the rest of the API keeps its own shape
    assert set(client.get("/api/v1/jobs/").json()) == {"detail"}
    r = client.post("/api/v1/jobs/", json={}, headers=ADMIN_HEADERS)
    assert r.status_code == 422 and set(r.json()) == {"detail"}


def test_a_key_limit_is_an_openai_429(tmp_path: Path, repo: JobRepository) -> None:
    from actors.errors import TooManyRequests

    client, coordinator = app_with(tmp_path, repo)

    async def refuse(method: str, *args: Any) -> Any:
        raise TooManyRequests("too many jobs a minute for this key", retry_after_s=3)

    coordinator.call = refuse  # type: ignore[method-assign]
    r = transcribe(client)
    assert_openai_error(r, 429, None, None)
    assert r.headers["retry-after"] == "3"


def test_the_audio_routes_take_bodies_up_to_max_upload_bytes(
    tmp_path: Path, repo: JobRepository
) -> None:
    client, _ = app_with(tmp_path, repo, max_request_bytes=1024, max_upload_bytes=64 * 1024)
    big = ("big.wav", b"\1" * 8 * 1024, "audio/wav")  # over MAX_REQUEST_BYTES
    r = client.post("/v1/audio/transcriptions", files={"file": big}, data={"model": "whisper-1"})
    assert r.status_code == 200, r.text
    huge = ("huge.wav", b"\1" * 65 * 1024, "audio/wav")
    r = client.post("/v1/audio/transcriptions", files={"file": huge}, data={"model": "whisper-1"})
    assert "MAX_UPLOAD_BYTES" in assert_openai_error(r, 413, "file", "file_too_large")
    # sent without a Content-Length: counted as it arrives
    chunks = iter([b"x" * 40 * 1024, b"x" * 40 * 1024])
    r = client.post(
        "/v1/audio/transcriptions",
        content=chunks,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_openai_error(r, 413, None, "file_too_large")
    r = client.post("/api/v1/jobs/", content=b"x" * 2048)
    assert r.status_code == 413 and set(r.json()) == {"detail"}


# -- waiting for the job -----------------------------------------------------------------


def job(status: JobStatus) -> Job:
    return Job(youtube_url="upload://x", job_type=JobType.transcription, status=status)


def test_the_wait_polls_until_the_job_ends() -> None:
    states = iter([JobStatus.queued, JobStatus.processing, JobStatus.completed])
    reads = []

    async def read() -> Job:
        reads.append(1)
        return job(next(states))

    async def connected() -> bool:
        return False

    ended = asyncio.run(wait_for_end(read, 60.0, connected, poll_s=0.0))
    assert ended is not None and ended.status is JobStatus.completed and len(reads) == 3


def test_a_client_that_goes_away_leaves_its_job_running() -> None:
    async def read() -> Job:
        return job(JobStatus.processing)

    async def gone() -> bool:
        return True

    assert asyncio.run(wait_for_end(read, 60.0, gone, poll_s=0.0)) is None


def test_the_wait_is_bounded_by_the_job_timeout() -> None:
    now = [0.0]

    async def read() -> Job:
        now[0] += 10.0  # each read, ten seconds later
        return job(JobStatus.processing)

    async def connected() -> bool:
        return False

    with pytest.raises(OpenAIError) as caught:
        asyncio.run(wait_for_end(read, 25.0, connected, poll_s=0.0, clock=lambda: now[0]))
    assert caught.value.status_code == 504 and caught.value.code == "timeout"
