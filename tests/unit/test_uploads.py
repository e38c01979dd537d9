"""Uploads (issue 11, item 5): POST /api/v1/uploads, jobs on `upload://<id>`, the fetch
stage on a staged upload, and the expiry of uploads no job names."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.stage_files import stage_in_upload
from deployments.api import create_app
from deployments.services import IngressServices
from pipeline.errors import DownloadError, MediaError, PolicyError
from pipeline.media.fetch import fetch_local
from pipeline.options import FetchOptions
from pipeline.types import CancelToken
from storage.local_store import LocalArtifactStore
from storage.models import JobType, Upload
from storage.repository import JobRepository
from storage.schemas import JobCreate
from storage.uploads import UploadRepository, safe_filename, upload_key
from tests.fixtures.media import make_video
from tests.unit.coordinator_fakes import MakeHarness
from tests.unit.test_api import NEW
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, make_services
from tests.unit.test_api_keys import repo as repo  # the fixture

MAX_UPLOAD = 64 * 1024


@pytest.fixture
def services(tmp_path: Path, repo: JobRepository) -> IngressServices:
    admin = ADMIN
    return make_services(
        tmp_path, repo, admin_api_key=admin, max_upload_bytes=MAX_UPLOAD, scratch_dir=str(tmp_path)
    )


@pytest.fixture
def client(services: IngressServices) -> TestClient:
    return TestClient(create_app(services))


def upload(
    client: TestClient, content: bytes, name: str = "talk.mp4", headers: Any = ADMIN_HEADERS
) -> Any:
    files = {"file": (name, io.BytesIO(content), "video/mp4")}
    return client.post("/api/v1/uploads", files=files, headers=headers)


def test_an_upload_is_stored_and_named_for_jobs(
    client: TestClient, services: IngressServices
) -> None:
    r = upload(client, b"\x00\x01" * 1000)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["url"] == f"upload://{made['id']}"
    assert (made["filename"], made["size_bytes"]) == ("talk.mp4", 2000)
    key = upload_key(uuid.UUID(made["id"]), "talk.mp4")
    assert services.store.size(key) == 2000
    row = services.uploads.get(uuid.UUID(made["id"]))
    assert row is not None and row.owner == "admin" and row.storage_path == key
    job = client.post(
        "/api/v1/jobs/", json={**NEW, "youtube_url": made["url"]}, headers=ADMIN_HEADERS
    )
    assert job.status_code == 201 and job.json()["youtube_url"] == made["url"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\evil.mp4", "evil.mp4"),
        ("/abs/path/clip.mkv", "clip.mkv"),
        ("..", "upload"),
        ("", "upload"),
        ("a\x00b.mp4", "ab.mp4"),
        ("x" * 300 + ".mp4", "x" * 196 + ".mp4"),
    ],
)
def test_an_upload_name_never_leaves_its_directory(given: str, kept: str) -> None:
    assert safe_filename(given) == kept
    assert upload_key(uuid.uuid4(), safe_filename(given)).count("/") == 2


def test_a_traversing_name_is_stored_under_the_upload(
    client: TestClient, services: IngressServices
) -> None:
    r = upload(client, b"data", name="../../../vpa.db")
    assert r.status_code == 201 and r.json()["filename"] == "vpa.db"
    assert services.store.size(upload_key(uuid.UUID(r.json()["id"]), "vpa.db")) == 4


def test_an_upload_over_the_limit_is_a_413_and_stores_nothing(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    r = upload(client, b"x" * (MAX_UPLOAD + 1))
    assert r.status_code == 413 and "MAX_UPLOAD_BYTES" in r.json()["detail"]
    assert services.store.list_keys("uploads") == []


@pytest.mark.parametrize("files", [{"file": ("e.mp4", b"", "video/mp4")}, None])
def test_an_empty_or_missing_file_is_a_422(client: TestClient, files: Any) -> None:
    r = client.post("/api/v1/uploads", files=files, data={"x": "1"}, headers=ADMIN_HEADERS)
    assert r.status_code == 422


def test_a_job_takes_only_its_own_keys_uploads(client: TestClient) -> None:
    made = client.post("/api/v1/keys", json={"name": "alice"}, headers=ADMIN_HEADERS).json()
    alice = {"X-API-Key": made["key"]}
    bob_key = client.post("/api/v1/keys", json={"name": "bob"}, headers=ADMIN_HEADERS).json()
    bob = {"X-API-Key": bob_key["key"]}
    url = upload(client, b"data", headers=alice).json()["url"]
    assert (
        client.post("/api/v1/jobs/", json={**NEW, "youtube_url": url}, headers=alice).status_code
        == 201
    )
    for headers, source in ((bob, url), (alice, f"upload://{uuid.uuid4()}")):
        r = client.post("/api/v1/jobs/", json={**NEW, "youtube_url": source}, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "upload_not_found", r.text
    r = client.post("/api/v1/jobs/", json={**NEW, "youtube_url": "upload://nope"}, headers=alice)
    assert r.status_code == 422


# -- the fetch stage on an upload -----------------------------------------------------------


def test_a_staged_upload_is_the_jobs_own_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    upload_id = uuid.uuid4()
    (tmp_path / "src.mp4").write_bytes(b"media")
    store.put_file(tmp_path / "src.mp4", upload_key(upload_id, "talk.mp4"))
    staged = stage_in_upload(store, upload_id, tmp_path / "work")
    assert staged.read_bytes() == b"media" and not staged.is_symlink()
    store.delete_keys([upload_key(upload_id, "talk.mp4")])  # the upload expires...
    assert staged.read_bytes() == b"media"  # ...the job's file stays
    with pytest.raises(DownloadError, match="is gone") as gone:
        stage_in_upload(store, uuid.uuid4(), tmp_path / "work2")
    assert gone.value.code == "not_found"


def test_fetch_checks_an_upload_as_a_download(tmp_path: Path) -> None:
    make_video(tmp_path / "My Talk.mp4", duration_s=1.0)
    result = fetch_local(
        tmp_path / "My Talk.mp4",
        "upload://x",
        tmp_path / "work",
        FetchOptions(),
        lambda *_: None,
        CancelToken(),
    )
    assert Path(result.path).name == "source.mp4" and result.title == "My Talk"
    assert result.duration_s is not None and 0.5 < result.duration_s < 2
    (tmp_path / "notes.txt").write_text("not media")
    with pytest.raises(MediaError):
        fetch_local(
            tmp_path / "notes.txt",
            "upload://y",
            tmp_path / "w2",
            FetchOptions(),
            lambda *_: None,
            CancelToken(),
        )
    assert list((tmp_path / "w2").iterdir()) == []
    make_video(tmp_path / "long.mp4", duration_s=3.0)
    with pytest.raises(PolicyError) as refused:
        options = FetchOptions(max_media_duration_s=1.0)
        fetch_local(
            tmp_path / "long.mp4",
            "upload://z",
            tmp_path / "w3",
            options,
            lambda *_: None,
            CancelToken(),
        )
    assert refused.value.code == "too_long"


# -- expiry ----------------------------------------------------------------------------------


async def test_uploads_no_job_names_expire_after_their_ttl(make_harness: MakeHarness) -> None:
    h = make_harness(upload_ttl_s=3600.0)
    uploads = UploadRepository(h.repo.engine)
    now = h.core._now()
    rows = {}
    for name, age_s in (("old", 7200), ("named", 7200), ("new", 60)):
        upload_id = uuid.uuid4()
        key = upload_key(upload_id, f"{name}.mp4")
        (h.tmp_path / "f").write_bytes(b"x")
        h.store.put_file(h.tmp_path / "f", key)
        rows[name] = uploads.add(
            Upload(
                id=upload_id,
                filename=f"{name}.mp4",
                content_type="video/mp4",
                size_bytes=1,
                storage_path=key,
                created_at=now - timedelta(seconds=age_s),
            )
        )
    named = f"upload://{rows['named'].id}"
    await h.core.submit(JobCreate(youtube_url=named, job_type=JobType.audio_extraction))
    counts = await h.core.removal.sweep()
    assert counts.expired_uploads == 1
    assert uploads.get(rows["old"].id) is None and not h.store.exists(rows["old"].storage_path)
    for kept in ("named", "new"):
        assert uploads.get(rows[kept].id) is not None and h.store.exists(rows[kept].storage_path)
