"""The coordinator killed in the middle of a job, and a whole application restart: no job
is lost, none runs twice at once, and work resumes from the last completed stage."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime
from typing import Any

import pytest
import ray

from actors.job_coordinator import coordinator_name
from tests.integration.conftest import NAMESPACE, VpaApp, deploy, kill_vpa_actors


def _ffmpeg_count(job_id: str) -> int:
    out = subprocess.run(["pgrep", "-af", "ffmpeg"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if job_id in line and "pgrep" not in line)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, sample_media: Any, media_server: Any) -> VpaApp:
    media_server.add_file(sample_media.path("long_silence.flac"), "long_silence.flac")
    return deploy_vpa(max_concurrent_jobs=1)


def test_coordinator_killed_mid_job_resumes_from_checkpoint(app: VpaApp, media_server: Any) -> None:
    job = app.submit(
        media_server.url("long_silence.flac"),
        options={"audio_format": "mp3", "audio_quality": "high"},
    )
    app.wait(job["id"], lambda j: j["current_stage"] == "audio", timeout_s=60)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _ffmpeg_count(job["id"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ray.kill(ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE))
        done = app.wait(job["id"], timeout_s=120)
    finally:
        stop.set()
        watcher.join()
    assert done["status"] == "completed", done
    assert done["attempt"] == 2
    assert peak <= 1, "two ffmpeg processes ran for one job at the same time"
    events = app.events(done["id"])
    types = [e["type"] for e in events]
    assert "recovered" in types
    after = events[types.index("recovered") :]
    assert [e["stage"] for e in after if e["type"] == "stage_started"] == ["audio"]
    arts = app.client.get(f"/api/v1/jobs/{done['id']}/artifacts").json()
    assert sorted(a["kind"] for a in arts) == ["audio", "source"]


def test_application_restart_keeps_queue_and_order(
    app: VpaApp, http_port: int, sample_media: Any, media_server: Any
) -> None:
    blocker = app.submit(media_server.url("slow/clip.mp4?rate=4000"), priority=5)["id"]
    app.wait(blocker, lambda j: j["status"] == "processing")
    queued = [app.submit(sample_media.clip, priority=p)["id"] for p in (3, 7, 3)]
    kill_vpa_actors()
    restarted = deploy(http_port, app.settings)
    for job_id in [blocker, *queued]:
        assert restarted.wait(job_id, timeout_s=90)["status"] == "completed"
    started = {
        job_id: max(
            _ts(e["created_at"]) for e in restarted.events(job_id) if e["type"] == "started"
        )
        for job_id in queued
    }
    order = sorted(queued, key=lambda j: started[j])
    assert order == [queued[1], queued[0], queued[2]]  # priority 7 first, then FIFO
    assert "recovered" in [e["type"] for e in restarted.events(blocker)]


def test_redeploy_with_new_settings_reconfigures_the_live_coordinator(app: VpaApp) -> None:
    from ray import serve

    from serve_app import app_from_settings

    before = ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE)
    changed = app.settings.model_copy(update={"max_concurrent_jobs": 3})
    serve.run(app_from_settings(changed, with_models=False), name="vpa", route_prefix="/")
    deadline = time.monotonic() + 30
    limit = 0
    while time.monotonic() < deadline:
        limit = app.client.get("/api/v1/jobs/queue/status").json()["max_concurrent_jobs"]
        if limit == 3:
            break
        time.sleep(0.2)
    assert limit == 3
    after = ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE)
    assert after._actor_id == before._actor_id  # the same actor, not a second writer
    assert len(app.client.get("/api/v1/workers").json()["workers"]) == 3
