"""The coordinator killed in the middle of a job, and a whole application restart: no job
is lost, none runs twice at once, and work resumes from the last completed stage.

The job in flight is held where it is while the test acts, so it cannot end first: its
ffmpeg stopped (SIGSTOP, by the pid its stage reported), or its download held back by the
media server until the test releases it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import ray

from actors.job_coordinator import coordinator_name
from tests.integration.conftest import NAMESPACE, VpaApp, deploy, kill_vpa_actors
from tests.integration.processes import (
    describe,
    gone,
    kill_if_running,
    reported_ffmpeg_pids,
    stop_running_ffmpeg,
)


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
    first = stop_running_ffmpeg(app, job["id"], "audio")  # the attempt cannot finish now
    try:
        ray.kill(ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE))
        # Its ffmpeg must be gone before the next attempt starts one: a second pid reported
        # while the first process still exists means two ran for one job at the same time.
        deadline = time.monotonic() + 120
        while not gone(first):
            others = set(reported_ffmpeg_pids(app, job["id"], "audio")) - {first.pid}
            assert not others, f"two ffmpeg processes ran for one job: {describe(first)}"
            assert time.monotonic() < deadline, f"the first attempt lives on: {describe(first)}"
            time.sleep(0.1)
        done = app.wait(job["id"], timeout_s=120)
    finally:
        kill_if_running(first)
    assert done["status"] == "completed", done
    assert done["attempt"] == 2
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
    hold = media_server.hold("clip.mp4")  # the blocker runs until after the restart
    try:
        blocker = app.submit(hold.url, priority=5)["id"]
        app.wait(blocker, lambda j: j["status"] == "processing")
        queued = [app.submit(sample_media.clip, priority=p)["id"] for p in (3, 7, 3)]
        kill_vpa_actors()
        restarted = deploy(http_port, app.settings)
    finally:
        hold.release()
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
