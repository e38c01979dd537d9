"""The service on the S3 backend (a real SeaweedFS server): a `full_processing` job end to
end, its artifacts only in the object store, HTTP Range and the zip served from there, and
deleting the job deleting its objects."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from storage.artifacts import job_prefix
from storage.stores import open_store, storage_config
from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, s3_server: Any) -> VpaApp:
    return deploy_vpa(
        with_models=True,
        artifact_url=s3_server.artifact_url(f"e2e-{uuid.uuid4().hex[:8]}"),
        s3_endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key=s3_server.secret_access_key,
        aws_region=s3_server.region,
    )


def test_full_processing_on_s3(app: VpaApp, speech_video: str) -> None:
    store = open_store(storage_config(app.settings))
    assert store.url.startswith("s3://")
    job = app.submit(
        speech_video, job_type="full_processing", options={"max_clips": 1, "clip_duration": 10}
    )
    done = app.wait(job["id"], timeout_s=240)
    assert done["status"] == "completed", done
    artifacts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    kinds = {a["kind"] for a in artifacts}
    assert {
        "source",
        "audio",
        "transcript_json",
        "analysis_json",
        "clip",
        "video_subtitled",
    } <= kinds
    keys = set(store.list_keys(job_prefix(job["id"])))
    assert keys == {f"{job['id']}/{a['filename']}" for a in artifacts}
    for a in artifacts:
        assert store.size(f"{job['id']}/{a['filename']}") == a["size_bytes"]
    # nothing of the job on local disk: not in ARTIFACT_DIR, not left in a scratch directory
    assert not [p for p in Path(app.settings.artifact_dir).rglob("*") if p.is_file()]
    assert not list(Path(app.settings.scratch_dir).glob(f"*/{job['id']}"))

    clip = next(a for a in artifacts if a["kind"] == "clip")
    full = app.client.get(clip["download_url"])
    assert full.status_code == 200 and len(full.content) == clip["size_bytes"]
    assert full.headers["accept-ranges"] == "bytes"
    part = app.client.get(clip["download_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{clip['size_bytes']}"
    assert part.content == full.content[100:1100]
    tail = app.client.get(clip["download_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    past = app.client.get(clip["download_url"], headers={"Range": f"bytes={10**9}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{clip['size_bytes']}"

    zipped = app.client.get(f"/api/v1/jobs/{job['id']}/download")
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == {a["filename"] for a in artifacts} | {"job.json"}
        assert archive.read(clip["filename"]) == full.content

    assert app.client.delete(f"/api/v1/jobs/{job['id']}").status_code == 200
    assert store.list_keys(job_prefix(job["id"])) == []


def test_an_object_gone_from_the_store_answers_410(app: VpaApp, sample_media: Any) -> None:
    job = app.submit(sample_media.clip)
    assert app.wait(job["id"])["status"] == "completed"
    audio = next(
        a for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
        if a["kind"] == "audio"
    )  # fmt: skip
    open_store(storage_config(app.settings)).delete_keys([f"{job['id']}/{audio['filename']}"])
    r = app.client.get(audio["download_url"])
    assert r.status_code == 410 and audio["filename"] in r.json()["detail"]
