"""URL policy at submission (ALLOW_PRIVATE_URLS off); download limits and JOB_TIMEOUT."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def strict(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(allow_private_urls=False)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/video.mp4", "loopback"),
        ("http://localhost/video.mp4", "loopback"),
        ("http://10.1.2.3/video.mp4", "private"),
        ("http://192.168.0.10/video.mp4", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/video.mp4", "loopback"),
        ("http://224.0.0.1/video.mp4", "multicast"),
        ("http://0.0.0.0/video.mp4", "unspecified"),
    ],
)
def test_private_addresses_refused_with_reason(strict: VpaApp, url: str, reason: str) -> None:
    r = strict.client.post(
        "/api/v1/jobs/", json={"youtube_url": url, "job_type": "audio_extraction"}
    )
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert r.json()["code"] == "url_refused"


def test_bulk_create_reports_refused_items(strict: VpaApp) -> None:
    r = strict.client.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [{"youtube_url": "http://127.0.0.1/x.mp4", "job_type": "audio_extraction"}]},
    )
    assert r.status_code == 200
    item = r.json()["results"][0]
    assert item["ok"] is False and item["status_code"] == 422 and "loopback" in item["detail"]


@pytest.fixture(scope="module")
def limited(deploy_vpa: Any, sample_media: Any) -> VpaApp:
    return deploy_vpa(max_download_bytes=300_000, max_media_duration_s=10.0, job_timeout=6.0)


def test_download_size_limit(limited: VpaApp, sample_media: Any) -> None:
    job = limited.wait(limited.submit(sample_media.long)["id"])  # 385 KB > 300 KB
    assert job["status"] == "failed"
    assert job["error_code"] == "too_large"
    size_kb = sample_media.path("long.mp4").stat().st_size / 1000
    assert job["error_message"] == (
        f"The media is larger than the 300.0 KB download limit ({size_kb:.1f} KB)"
    )


def test_media_duration_limit(limited: VpaApp, media_server: Any, sample_media: Any) -> None:
    media_server.add_file(sample_media.path("long_silence.flac"), "long_silence.flac")
    job = limited.wait(limited.submit(media_server.url("long_silence.flac"))["id"])
    assert job["status"] == "failed"
    assert job["error_code"] == "too_long"
    assert job["error_message"] == "The media lasts 1800 s, longer than the 10 s limit"
    ok = limited.wait(limited.submit(sample_media.clip)["id"])
    assert ok["status"] == "completed"


def test_job_timeout(limited: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("clip.mp4")  # only the timeout can end this download
    try:
        job = limited.submit(hold.url, max_retries=2)
        done = limited.wait(job["id"], timeout_s=60)
    finally:
        hold.release()
    assert done["status"] == "failed"
    assert done["error_code"] == "timeout"
    assert done["error_message"] == "the job ran past JOB_TIMEOUT (6 s) during the fetch stage"
    assert done["retry_count"] == 0
