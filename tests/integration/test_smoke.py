"""The audio_extraction job end to end: submit, run on Ray, store the audio, download it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa()


def test_audio_extraction_end_to_end(app: VpaApp, sample_media: Any) -> None:
    job = app.submit(sample_media.clip, options={"audio_format": "mp3", "audio_quality": "low"})
    assert job["status"] in {"pending", "queued", "processing"}
    done = app.wait(job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100.0
    assert done["video_title"]
    assert done["duration"] == pytest.approx(1.0, abs=0.2)
    arts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    audio = next(a for a in arts if a["kind"] == "audio")
    assert audio["format"] == "mp3"
    r = app.client.get(audio["download_url"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("audio/")
    assert len(r.content) == audio["size_bytes"]
    kinds = [e["type"] for e in app.events(job["id"])]
    assert kinds[:3] == ["created", "queued", "started"]
    assert kinds[-1] == "completed"
