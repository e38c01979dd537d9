"""Uploads on the real service: a clip sent as multipart through HAProxy, then an
audio_extraction job on `upload://<id>` that completes from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.media import make_video
from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(max_concurrent_jobs=2)


def test_a_job_runs_on_an_uploaded_file(app: VpaApp, tmp_path: Path) -> None:
    clip = tmp_path / "Quarterly Review.mp4"
    make_video(clip, duration_s=1.0)
    with clip.open("rb") as f:
        r = httpx.post(
            f"{app.base_url}/api/v1/uploads",
            files={"file": (clip.name, f, "video/mp4")},
            timeout=60,
        )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["size_bytes"] == clip.stat().st_size and made["filename"] == clip.name
    job = app.submit(made["url"], "audio_extraction")
    done = app.wait(job["id"], timeout_s=120)
    assert done["status"] == "completed", done
    assert done["video_title"] == "Quarterly Review"
    kinds = {a["kind"] for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()}
    assert {"source", "audio"} <= kinds
    # the job's source is its own copy: the upload's file may go, the job's stays
    source = next(
        a
        for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
        if a["kind"] == "source"
    )
    assert app.client.get(source["download_url"]).content == clip.read_bytes()


def test_an_oversized_upload_is_refused_before_it_is_read(deploy_vpa: Any) -> None:
    small = deploy_vpa(max_upload_bytes=4096)
    r = httpx.post(
        f"{small.base_url}/api/v1/uploads",
        files={"file": ("big.mp4", b"x" * 10_000, "video/mp4")},
        timeout=60,
    )
    assert r.status_code == 413 and "MAX_UPLOAD_BYTES" in r.json()["detail"]
