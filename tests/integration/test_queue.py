"""Queue behaviour on real Ray: priority order, the concurrency limit, retries with backoff,
resuming from a checkpoint, cancelling a running job.

Nothing here races a job's end: a job that must still be running when the test acts
downloads a held file (`media_server.hold`) or extracts endless silence, and processes are
found by the pid their stage reports or by the connection they hold, never by name.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import VpaApp
from tests.integration.processes import (
    describe,
    gone,
    kill_if_running,
    running_ffmpeg,
    wait_gone,
)


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, sample_media: Any) -> VpaApp:
    return deploy_vpa(max_concurrent_jobs=2)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _first(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == kind)


def test_priority_order_and_concurrency_limit(
    app: VpaApp, sample_media: Any, media_server: Any
) -> None:
    # the two blockers hold both slots until the queue has been read
    hold = media_server.hold("long.mp4")
    blockers = [app.submit(hold.url)["id"] for _ in range(2)]
    app.wait(blockers[0], lambda j: j["status"] == "processing")
    app.wait(blockers[1], lambda j: j["status"] == "processing")
    order = [(1, "p1"), (9, "p9a"), (5, "p5"), (9, "p9b"), (0, "p0")]
    ids = {}
    try:
        for prio, name in order:
            ids[name] = app.submit(sample_media.clip, priority=prio)["id"]
        status = app.client.get("/api/v1/jobs/queue/status").json()
    finally:
        hold.release()
    assert status["running_count"] == 2
    assert status["queued_order"] == [ids[n] for n in ("p9a", "p9b", "p5", "p1", "p0")]
    assert status["queued_by_priority"]["9"] == [ids["p9a"], ids["p9b"]]
    for job_id in [*blockers, *ids.values()]:
        assert app.wait(job_id, timeout_s=90)["status"] == "completed"
    started = {n: _ts(_first(app.events(i), "started")["created_at"]) for n, i in ids.items()}
    assert sorted(started, key=lambda n: started[n]) == ["p9a", "p9b", "p5", "p1", "p0"]
    # at no moment did more than two jobs run
    spans = []
    for job_id in [*blockers, *ids.values()]:
        job = app.job(job_id)
        spans.append(
            (_ts(_first(app.events(job_id), "started")["created_at"]), _ts(job["completed_at"]))
        )
    for start, _ in spans:
        running = sum(1 for s, e in spans if s <= start < e)
        assert running <= 2


def test_retryable_failure_retries_with_backoff_then_fails(app: VpaApp, media_server: Any) -> None:
    job = app.submit(media_server.url("status/503/flaky.mp4"), max_retries=2)
    done = app.wait(job["id"])
    assert done["status"] == "failed"
    assert done["retry_count"] == 2
    assert done["error_code"] == "network_error"
    events = app.events(job["id"])
    retries = [e for e in events if e["type"] == "retry_scheduled"]
    assert [e["data"]["retry"] for e in retries] == [1, 2]
    delays = [e["data"]["delay_s"] for e in retries]
    assert delays[1] == pytest.approx(2 * delays[0])
    starts = [e for e in events if e["type"] == "started"]
    assert len(starts) == 3
    # each attempt waited at least its backoff delay after the failure that scheduled it
    for retry, nxt in zip(retries, starts[1:], strict=True):
        assert (_ts(nxt["created_at"]) - _ts(retry["created_at"])).total_seconds() >= retry["data"][
            "delay_s"
        ] * 0.9


def test_non_retryable_failure_fails_at_once(app: VpaApp, sample_media: Any) -> None:
    done = app.wait(app.submit(sample_media.not_media, max_retries=3)["id"])
    assert done["status"] == "failed" and done["retry_count"] == 0
    assert "retry_scheduled" not in [e["type"] for e in app.events(done["id"])]


def test_manual_retry_resumes_from_last_completed_stage(app: VpaApp, sample_media: Any) -> None:
    job = app.wait(app.submit(sample_media.silent)["id"])
    assert job["status"] == "failed" and job["error_code"] == "no_audio"
    assert job["current_stage"] == "audio"
    before = len(app.events(job["id"]))
    r = app.client.post(f"/api/v1/jobs/{job['id']}/retry")
    assert r.status_code == 200 and r.json()["status"] == "queued"
    again = app.wait(job["id"], lambda j: j["status"] == "failed" and j["attempt"] == 2)
    assert again["error_code"] == "no_audio"
    after = app.events(job["id"])[before:]
    started_stages = [e["stage"] for e in after if e["type"] == "stage_started"]
    assert started_stages == ["audio"]  # fetch was checkpointed, not run again


def _partial_audio_files(app: VpaApp, job_id: str) -> list[Path]:
    """Audio files of the job, finished or half-written ("audio.mp3", ".audio-1a2b.mp3.part"),
    in the artifact store (a local directory here) or a scratch directory of any node."""
    places = [app.settings.artifact_path / job_id, *app.settings.scratch_path.glob(f"*/{job_id}")]
    return [
        p
        for place in places
        if place.is_dir()
        for p in place.rglob("*")
        if p.name.lstrip(".").startswith("audio")
    ]


def test_cancel_running_download(app: VpaApp, media_server: Any) -> None:
    # The held download cannot end before the cancel; the cancel call answers once the run
    # has ended (grace period plus a forced kill at most), so "cancelled" in its answer
    # proves the download was interrupted rather than waited out.
    hold = media_server.hold("long.mp4")
    try:
        job = app.submit(hold.url)
        app.wait(job["id"], lambda j: j["status"] == "processing" and j["progress"] > 0)
        r = app.client.post(f"/api/v1/jobs/{job['id']}/cancel")
    finally:
        hold.release()
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["progress"] < 50
    events = app.events(job["id"])
    assert events[-1]["type"] == "cancelled"
    assert events[-1]["stage"] == "fetch"


def test_cancel_running_ffmpeg_kills_it(
    app: VpaApp, media_server: Any, endless_silence: Path
) -> None:
    # weeks of audio: this ffmpeg runs until something kills it
    job = app.submit(
        media_server.url(endless_silence.name),
        options={"audio_format": "mp3", "audio_quality": "low"},
    )
    ffmpeg = running_ffmpeg(app, job["id"], "audio")
    try:
        assert not gone(ffmpeg), describe(ffmpeg)
        r = app.client.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        assert wait_gone(ffmpeg), describe(ffmpeg)
    finally:
        kill_if_running(ffmpeg)
    events = app.events(job["id"])
    assert events[-1]["type"] == "cancelled" and events[-1]["stage"] == "audio"
    assert _partial_audio_files(app, job["id"]) == []


def test_crashed_worker_is_retried(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4")  # the first attempt cannot finish its download
    try:
        job = app.submit(hold.url, max_retries=2)
        worker = psutil.Process(hold.wait_client_pid())  # the process downloading it
        assert app.job(job["id"])["current_stage"] == "fetch"
        worker.kill()
    finally:
        hold.release()  # the retry downloads the file in full
    done = app.wait(job["id"], timeout_s=90)
    assert done["status"] == "completed", done
    retries = [e for e in app.events(job["id"]) if e["type"] == "retry_scheduled"]
    assert [e["data"]["error_code"] for e in retries] == ["worker_crashed"]
