"""Retention on the real service: RETENTION_DAYS deletes finished jobs with their files
(announced on the broadcast socket first) and leaves running ones alone; ARTIFACT_MAX_BYTES
evicts the oldest finished job's artifacts while a newer job keeps its own.

A tiny RETENTION_DAYS (1e-6 days, about 0.09 s) and a sweep every 0.2 s stand in for days;
nothing here waits for time to pass beyond waiting for what the coordinator does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import VpaApp, deploy
from tests.integration.processes import kill_if_running, stop_running_ffmpeg

Message = dict[str, Any]


def read_until(conn: ClientConnection, stop: Callable[[Message], bool]) -> list[Message]:
    """Messages from the socket up to the first that `stop` accepts."""
    seen: list[Message] = []
    deadline = time.monotonic() + 120
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"never came; the last messages: {seen[-5:]}"
        seen.append(json.loads(conn.recv(timeout=left)))
        if stop(seen[-1]):
            return seen


def events_of(messages: list[Message], job_id: str) -> list[str]:
    return [m["event"] for m in messages if m.get("job_id") == job_id]


def job_dir(app: VpaApp, job_id: str) -> Path:
    return app.settings.artifact_path / job_id


def wait_until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def gone(app: VpaApp, url: str) -> bool:
    return app.client.get(url).status_code == 404


def artifacts(app: VpaApp, job_id: str) -> list[Message]:
    r = app.client.get(f"/api/v1/jobs/{job_id}/artifacts")
    assert r.status_code == 200, r.text
    return list(r.json())


def test_finished_jobs_expire_with_their_files_and_running_ones_stay(
    deploy_vpa: Any, sample_media: Any, media_server: Any
) -> None:
    media_server.add_file(sample_media.path("long_silence.flac"), "long_silence.flac")
    app = deploy_vpa(retention_days=1e-6, retention_sweep_s=0.2)
    with connect(app.ws_url + "/ws/jobs/broadcast", open_timeout=30, proxy=None) as conn:
        assert json.loads(conn.recv(timeout=30))["type"] == "connected"
        running = app.submit(
            media_server.url("long_silence.flac"),
            options={"audio_format": "mp3", "audio_quality": "high"},
        )["id"]
        ffmpeg = stop_running_ffmpeg(app, running, "audio")  # held after its fetch
        try:
            (source,) = artifacts(app, running)  # the fetched file, in the store
            assert (job_dir(app, running) / source["filename"]).is_file()
            done = app.submit(sample_media.clip)["id"]
            seen = read_until(conn, lambda m: m["job_id"] == done and m["event"] == "expired")
            # the finished job went; the running one, older than the limit too, did not
            assert app.job(running)["status"] == "processing"
            assert artifacts(app, running) == [source]
            assert (job_dir(app, running) / source["filename"]).is_file()
            ffmpeg.resume()
            seen += read_until(conn, lambda m: m["job_id"] == running and m["event"] == "expired")
        finally:
            kill_if_running(ffmpeg)
    for job_id in (done, running):
        history = events_of(seen, job_id)
        assert history.index("completed") == len(history) - 2  # then `expired`, the last
        url = f"/api/v1/jobs/{job_id}"
        wait_until(partial(gone, app, url), f"job {job_id} is still there")
        assert not job_dir(app, job_id).exists()
        assert app.client.get(f"/api/v1/jobs/{job_id}/events").status_code == 404
    expired = next(m for m in seen if m["job_id"] == done and m["event"] == "expired")
    assert expired["data"]["status"] == "completed"
    assert expired["data"]["event_data"] == {"retention_days": 1e-6}
    assert "RETENTION_DAYS" in expired["data"]["message"]


def test_artifact_max_bytes_evicts_the_oldest_finished_jobs_artifacts_first(
    deploy_vpa: Any, sample_media: Any, http_port: int
) -> None:
    app = deploy_vpa(retention_sweep_s=0.2)
    older = app.submit(sample_media.clip)["id"]
    assert app.wait(older)["status"] == "completed"
    newer = app.submit(sample_media.clip)["id"]
    assert app.wait(newer)["status"] == "completed"
    kept = {j: artifacts(app, j) for j in (older, newer)}
    size = {j: sum(a["size_bytes"] for a in kept[j]) for j in kept}
    assert kept[older] and all(job_dir(app, j).is_dir() for j in kept)
    # The same service, its store now limited to a byte less than both jobs' artifacts.
    limit = size[older] + size[newer] - 1
    app = deploy(http_port, app.settings.model_copy(update={"artifact_max_bytes": limit}))
    wait_until(lambda: artifacts(app, older) == [], "the older job kept its artifacts")
    (evicted,) = [e for e in app.events(older) if e["type"] == "artifacts_evicted"]
    assert evicted["data"] == {
        "status": "completed",
        "progress": 100.0,
        "files": len(kept[older]),
        "bytes": size[older],
        "artifact_max_bytes": limit,
    }
    assert not job_dir(app, older).exists()
    assert app.job(older)["status"] == "completed"  # the job stays
    gone = app.client.get(kept[older][0]["download_url"])
    assert gone.status_code == 404 and "ARTIFACT_MAX_BYTES" in gone.json()["detail"]
    assert artifacts(app, newer) == kept[newer]
    assert "artifacts_evicted" not in [e["type"] for e in app.events(newer)]
    assert sorted(p.name for p in job_dir(app, newer).iterdir()) == sorted(
        a["filename"] for a in kept[newer]
    )
    assert app.client.get(kept[newer][0]["download_url"]).status_code == 200
