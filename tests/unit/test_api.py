"""The app's routes on fakes: a real SQLite repository and local store, a coordinator and a
progress hub that are plain objects. Ray is never started; the app's lifespan never runs."""

from __future__ import annotations

import copy
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from actors.errors import JobConflict, JobNotFound
from config.logging import current_job
from config.settings import Settings
from deployments.api import create_app
from deployments.services import CoordinatorUnavailable, IngressServices
from storage.artifacts import job_key
from storage.db import create_db_engine, init_db
from storage.models import ADMIN_OWNER, Artifact, EventType, Job, JobStatus
from storage.repository import JobRepository
from storage.schemas import JobCreate, JobPublic
from storage.stores import StorageConfig, open_store

T0 = datetime(2024, 1, 1, tzinfo=UTC)
UNKNOWN = "00000000-0000-0000-0000-000000000000"
PUBLIC_URL = "http://93.184.216.34/v.mp4"  # an address: no DNS lookup
NEW = {"youtube_url": PUBLIC_URL, "job_type": "clip_generation"}
REFUSED = {"youtube_url": "http://127.0.0.1/v", "job_type": "clip_generation"}


class FakeCoordinator:
    def __init__(self, repo: JobRepository) -> None:
        self.repo = repo
        self.unavailable = False
        self.log_job_ids: list[str | None] = []  # what the request's log lines carried

    async def call(self, method: str, *args: Any) -> Any:
        self.log_job_ids.append(current_job.get())
        if self.unavailable:
            raise CoordinatorUnavailable("the job coordinator is unavailable: gone")
        if method == "submit":
            owner = args[1] if len(args) > 1 else ADMIN_OWNER
            job, created = self.repo.create_job(
                JobCreate.model_validate(args[0]), default_max_retries=3, now=T0, owner=owner
            )
            return JobPublic.model_validate(job).model_dump(mode="json"), created
        if method in {"cancel", "retry", "delete"}:
            found = self.repo.get_job(uuid.UUID(args[0]))
            if found is None:
                raise JobNotFound(f"Job {args[0]} not found")
            raise JobConflict(f"Job {args[0]} is {found.status.value}")
        return {"ping": {"ok": True}, "queue_status": {"queued": []}, "workers": []}[method]


class FakeHub:
    class _Method:
        def __init__(self, result: Any = None) -> None:
            self.result = result

        def remote(self, *_: Any) -> Any:
            return self.result

    class Awaited(_Method):
        """A method whose `.remote()` is awaited, as an actor call's ObjectRef is."""

        async def _answer(self) -> Any:
            return copy.deepcopy(self.result)

        def remote(self, *_: Any) -> Any:
            return self._answer()

    report_connections = _Method()
    connection_status = Awaited({"total_connections": 0, "job_connections": {}, "replicas": {}})


@pytest.fixture
def repo(tmp_path: Path) -> JobRepository:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    return JobRepository(engine)


def make_services(tmp_path: Path, repo: JobRepository, **settings: Any) -> IngressServices:
    """The replica's services on the fakes, a local store and `settings`."""
    store = open_store(
        StorageConfig(artifact_url=(tmp_path / "a").as_uri(), scratch_dir=str(tmp_path))
    )
    return IngressServices(
        settings=Settings(_env_file=None, **settings),
        repo=repo,
        store=store,
        coordinator=FakeCoordinator(repo),  # type: ignore[arg-type]
        hub=FakeHub(),
        replica_id="r1",
    )


@pytest.fixture
def services(tmp_path: Path, repo: JobRepository) -> IngressServices:
    return make_services(tmp_path, repo)


@pytest.fixture
def client(services: IngressServices) -> TestClient:
    return TestClient(create_app(services))


def completed_job(services: IngressServices, tmp_path: Path) -> tuple[Job, Artifact]:
    """A completed clip job with one clip (its three ids, no links) and one stored file."""
    repo = services.repo
    job, _ = repo.create_job(JobCreate.model_validate(NEW), default_max_retries=3, now=T0)
    names = {"video": "clip_01.mp4", "thumbnail": "clip_01.jpg", "subtitles": "clip_01.srt"}
    ids = {kind: str(uuid.uuid4()) for kind in names}
    clip = {"index": 1, "start": 0.0, "end": 2.0, "artifacts": ids}
    for status, event in [
        (JobStatus.queued, EventType.queued),
        (JobStatus.processing, EventType.started),
        (JobStatus.completed, EventType.completed),
    ]:
        fields: dict[str, Any] = {"status": status}
        if status is JobStatus.completed:
            fields["generated_clips"] = [clip]
        moved = repo.transition(job.id, event=event, fields=fields, now=T0)
        assert moved is not None
        job = moved[0]
    (tmp_path / "clip.srt").write_bytes(b"0123456789")
    key = job_key(job.id, names["subtitles"])
    size = services.store.put_file(tmp_path / "clip.srt", key)
    artifact = repo.add_artifact(
        Artifact(
            id=uuid.UUID(ids["subtitles"]),
            job_id=job.id,
            kind="clip_subtitles",
            filename=names["subtitles"],
            storage_path=key,
            format="srt",
            content_type="application/x-subrip",
            size_bytes=size,
        )
    )
    return job, artifact


def links(job_id: Any, clip: dict[str, Any]) -> dict[str, str]:
    base = f"/api/v1/jobs/{job_id}/artifacts"
    return {
        f"{kind}_url": f"{base}/{clip['artifacts'][kind]}/download"
        for kind in ("video", "thumbnail", "subtitles")
    }


def test_unknown_and_malformed_jobs(client: TestClient, services: IngressServices) -> None:
    for path in ("", "/events", "/artifacts", "/download", f"/artifacts/{UNKNOWN}/download"):
        r = client.get(f"/api/v1/jobs/{UNKNOWN}{path}")
        assert r.status_code == 404, path
        assert r.json() == {"detail": f"Job {UNKNOWN} not found"}
    r = client.get("/api/v1/jobs/not-a-uuid")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "job_id"]
    job, _ = services.repo.create_job(JobCreate.model_validate(NEW), default_max_retries=3, now=T0)
    r = client.get(f"/api/v1/jobs/{job.id}/artifacts/{UNKNOWN}/download")
    assert r.json() == {"detail": f"Artifact {UNKNOWN} of job {job.id} not found"}


def test_static_paths_match_before_job_ids(client: TestClient) -> None:
    for path in ("/api/v1/jobs/queue/status", "/api/v1/queue/status"):
        assert client.get(path).json() == {"queued": []}
    assert client.get("/api/v1/jobs/statistics").status_code == 200
    assert client.get("/api/v1/statistics").status_code == 200


def test_create_idempotent_and_refused(client: TestClient) -> None:
    body = {**NEW, "idempotency_key": "k"}
    first = client.post("/api/v1/jobs/", json=body)
    again = client.post("/api/v1/jobs/", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    r = client.post("/api/v1/jobs/", json=REFUSED)
    assert r.status_code == 422 and r.json()["code"] == "url_refused"
    bulk = client.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [NEW, REFUSED]},
    ).json()
    assert [i["status_code"] for i in bulk["results"]] == [201, 422]
    assert (bulk["succeeded"], bulk["failed"]) == (1, 1)


def test_coordinator_errors_become_status_codes(
    client: TestClient, services: IngressServices
) -> None:
    job_id = client.post("/api/v1/jobs/", json=NEW).json()["id"]
    assert client.post(f"/api/v1/jobs/{UNKNOWN}/cancel").status_code == 404
    assert client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 409
    r = client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": [job_id, UNKNOWN]}).json()
    assert [i["status_code"] for i in r["results"]] == [409, 404]
    services.coordinator.unavailable = True  # type: ignore[attr-defined]
    r = client.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 503 and "unavailable" in r.json()["detail"]
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"


def test_artifact_download_ranges_and_gone(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, artifact = completed_job(services, tmp_path)
    (listed,) = client.get(f"/api/v1/jobs/{job.id}/artifacts").json()
    url = listed["download_url"]
    assert url == f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download"
    assert client.get(url).content == b"0123456789"
    part = client.get(url, headers={"Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert client.get(url, headers={"Range": "bytes=99-"}).status_code == 416
    services.store.delete_keys([artifact.storage_path])
    r = client.get(url)
    assert r.status_code == 410 and r.json() == {"detail": "Artifact file clip_01.srt is gone"}


def test_every_job_response_links_its_clips(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, _ = completed_job(services, tmp_path)
    (clip,) = job.generated_clips or []
    assert "video_url" not in clip  # the stored entry names ids only
    want = links(job.id, clip)
    (got,) = client.get(f"/api/v1/jobs/{job.id}").json()["generated_clips"]
    assert got == {**clip, **want}
    (listed,) = client.get("/api/v1/jobs/").json()["data"]
    assert listed["generated_clips"][0] == {**clip, **want}
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/jobs/{job.id}/download").content))
    manifest = json.loads(archive.read("job.json"))
    assert manifest["job"]["generated_clips"][0] == {**clip, **want}
    assert archive.read("clip_01.srt") == b"0123456789"
    with client.websocket_connect(f"/ws/{job.id}") as ws:
        initial, finished = ws.receive_json(), ws.receive_json()
    assert initial["type"] == "initial_status" and initial["replica"] == "r1"
    assert finished["type"] == "job_finished"
    for message in (initial, finished):
        assert message["data"]["generated_clips"][0] == {**clip, **want}


def test_zip_of_kinds_without_artifacts(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, _ = completed_job(services, tmp_path)
    r = client.get(f"/api/v1/jobs/{job.id}/download", params={"kind": "clip"})
    assert r.status_code == 404
    assert r.json() == {"detail": f"Job {job.id} has no artifacts of kind clip yet"}


@pytest.mark.parametrize(("job_id", "code"), [("not-a-job", 4400), (UNKNOWN, 4404)])
def test_job_socket_refuses_bad_ids(client: TestClient, job_id: str, code: int) -> None:
    with client.websocket_connect(f"/ws/{job_id}") as ws:
        assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code


def test_health_and_workers(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray import serve

    def no_serve() -> None:  # also when an earlier test of the session started Serve
        raise RuntimeError("no Serve here")

    monkeypatch.setattr(serve, "status", no_serve)
    health = client.get("/health").json()
    assert health["status"] == "healthy" and health["replica"] == "r1"
    assert health["database"] == {"ok": True, "backend": "sqlite"}
    workers = client.get("/api/v1/workers").json()
    assert workers == {"workers": [], "replicas": [{"error": "no Serve here"}]}


def test_request_log_lines_carry_the_job_id_of_the_path(
    client: TestClient, services: IngressServices
) -> None:
    coordinator = cast(FakeCoordinator, services.coordinator)
    job, _ = services.repo.create_job(JobCreate.model_validate(NEW), default_max_retries=3, now=T0)
    assert client.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 409  # the fake's answer
    assert client.get("/api/v1/jobs/queue/status").status_code == 200  # no job in the path
    assert coordinator.log_job_ids == [str(job.id), None]


def test_evicted_artifacts_answer_404_saying_why(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, artifact = completed_job(services, tmp_path)
    url = f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download"
    other = f"/api/v1/jobs/{job.id}/artifacts/{UNKNOWN}/download"
    assert client.get(other).json() == {"detail": f"Artifact {UNKNOWN} of job {job.id} not found"}
    # what the retention sweep does (actors/job_removal.py): files, event, rows
    services.store.delete_job(job.id)
    evicted = services.repo.transition(job.id, event=EventType.artifacts_evicted, now=T0)
    assert evicted is not None
    services.repo.delete_artifacts(job.id)
    why = (
        ": the job's artifacts were deleted at 2024-01-01T00:00:00Z to keep the artifact "
        "store under ARTIFACT_MAX_BYTES"
    )
    r = client.get(url)
    assert r.status_code == 404
    assert r.json() == {"detail": f"Artifact {artifact.id} of job {job.id} not found{why}"}
    r = client.get(f"/api/v1/jobs/{job.id}/download")
    assert r.status_code == 404 and r.json() == {"detail": f"Job {job.id} has no artifacts{why}"}
    assert client.get(f"/api/v1/jobs/{job.id}/artifacts").json() == []
    assert client.get(f"/api/v1/jobs/{job.id}").json()["status"] == "completed"
