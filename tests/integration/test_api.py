"""Every REST endpoint and its error paths, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import VpaApp

SEED_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
JOB_FIELDS = {
    "id", "youtube_url", "job_type", "status", "priority", "progress", "current_stage",
    "status_message", "options", "video_title", "duration", "transcript", "segments",
    "analysis_results", "generated_clips", "error_message", "error_code", "retry_count",
    "max_retries", "idempotency_key", "attempt", "created_at", "queued_at", "started_at",
    "completed_at", "updated_at",
}  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, deploy_vpa: Any) -> VpaApp:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        return deploy_vpa(database_url=url)
    return deploy_vpa()


@pytest.fixture(scope="module")
def done_job(app: VpaApp, sample_media: Any) -> dict[str, Any]:
    job = app.submit(sample_media.clip, options={"audio_format": "wav", "audio_quality": "low"})
    return app.wait(job["id"])


def test_seed_curl_example_create(app: VpaApp) -> None:
    r = app.client.post(
        "/api/v1/jobs/",
        json={
            "youtube_url": SEED_URL,
            "job_type": "full_processing",
            "priority": 5,
            "options": {"audio_format": "wav", "language": "en", "max_clips": 10},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= JOB_FIELDS
    assert body["youtube_url"] == SEED_URL
    assert body["job_type"] == "full_processing"
    assert body["priority"] == 5
    assert body["created_at"].endswith("Z")
    assert body["options"]["max_clips"] == 10
    app.client.post(f"/api/v1/jobs/{body['id']}/cancel")


def test_seed_test_example(app: VpaApp) -> None:
    client = app.client
    response = client.post(
        "/api/v1/jobs/",
        json={"youtube_url": SEED_URL, "job_type": "transcription", "options": {"language": "en"}},
    )
    job_id = response.json()["id"]
    assert response.status_code == 201
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] in ["pending", "queued", "processing"]
    client.post(f"/api/v1/jobs/{job_id}/cancel")


def test_get_unknown_and_malformed_job(app: VpaApp) -> None:
    r = app.client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404
    assert "not found" in r.json()["detail"]
    assert app.client.get("/api/v1/jobs/not-a-uuid").status_code == 422


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"job_type": "audio_extraction"}, "youtube_url"),
        ({"youtube_url": "http://x.test/v", "job_type": "dance"}, "job_type"),
        ({"youtube_url": "http://x.test/v", "job_type": "analysis", "priority": 11}, "priority"),
        (
            {"youtube_url": "http://x.test/v", "job_type": "analysis", "options": {"bogus": 1}},
            "bogus",
        ),
        (
            {
                "youtube_url": "http://x.test/v",
                "job_type": "analysis",
                "options": {"audio_format": "ogg"},
            },
            "audio_format",
        ),
        (
            {"youtube_url": "http://x.test/v", "job_type": "analysis", "options": {"max_clips": 0}},
            "max_clips",
        ),
        (
            {
                "youtube_url": "http://x.test/v",
                "job_type": "clip_generation",
                "options": {"clip_duration": 5, "overlap_duration": 6},
            },
            "overlap_duration",
        ),
        ({"youtube_url": "ftp://x.test/v", "job_type": "analysis"}, "http"),
        ({"youtube_url": "file:///etc/passwd", "job_type": "analysis"}, "http"),
    ],
)
def test_create_rejects_bad_input(app: VpaApp, body: dict[str, Any], needle: str) -> None:
    r = app.client.post("/api/v1/jobs/", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text


def test_idempotency_key_returns_existing_job(app: VpaApp) -> None:
    body = {"youtube_url": SEED_URL, "job_type": "analysis", "idempotency_key": "key-1"}
    first = app.client.post("/api/v1/jobs/", json=body)
    second = app.client.post("/api/v1/jobs/", json=body)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    app.client.post(f"/api/v1/jobs/{first.json()['id']}/cancel")


def test_completed_job_fields_events_artifacts(app: VpaApp, done_job: dict[str, Any]) -> None:
    assert done_job["status"] == "completed", done_job
    assert done_job["progress"] == 100.0
    assert done_job["started_at"] and done_job["completed_at"]
    assert done_job["error_message"] is None
    events = app.events(done_job["id"])
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    types = [e["type"] for e in events]
    for expected in (
        "created",
        "queued",
        "started",
        "stage_started",
        "stage_completed",
        "completed",
    ):
        assert expected in types
    stages = [e["stage"] for e in events if e["type"] == "stage_completed"]
    assert stages == ["fetch", "audio"]
    arts = app.client.get(f"/api/v1/jobs/{done_job['id']}/artifacts").json()
    assert {a["kind"] for a in arts} == {"source", "audio"}
    assert (
        app.client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/events").status_code
        == 404
    )


def test_artifact_download_supports_range(app: VpaApp, done_job: dict[str, Any]) -> None:
    arts = app.client.get(f"/api/v1/jobs/{done_job['id']}/artifacts").json()
    audio = next(a for a in arts if a["kind"] == "audio")
    full = app.client.get(audio["download_url"])
    assert full.status_code == 200
    assert full.headers["content-type"] == "audio/wav"
    assert full.content[:4] == b"RIFF"
    part = app.client.get(audio["download_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == full.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full.content)}"
    missing = (
        f"/api/v1/jobs/{done_job['id']}/artifacts/00000000-0000-0000-0000-000000000000/download"
    )
    assert app.client.get(missing).status_code == 404


def test_list_filters_sort_pagination(
    app: VpaApp, done_job: dict[str, Any], sample_media: Any
) -> None:
    ids = []
    for prio in (1, 7, 3):
        ids.append(app.submit(sample_media.slow_long, job_type="analysis", priority=prio)["id"])
    for job_id in ids:
        app.client.post(f"/api/v1/jobs/{job_id}/cancel")
    r = app.client.get("/api/v1/jobs/", params={"status_filter": "completed"})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] >= 1
    assert all(j["status"] == "completed" for j in body["data"])
    r = app.client.get(
        "/api/v1/jobs/",
        params={"job_type": "analysis", "min_priority": 3, "sort_by": "priority", "order": "asc"},
    )
    prios = [j["priority"] for j in r.json()["data"]]
    assert prios == sorted(prios) and min(prios) >= 3
    page = app.client.get("/api/v1/jobs/", params={"limit": 1, "offset": 1}).json()
    assert len(page["data"]) == 1 and page["count"] >= 4
    after = app.client.get("/api/v1/jobs/", params={"created_after": "2999-01-01T00:00:00Z"}).json()
    assert after == {"data": [], "count": 0, "limit": 20, "offset": 0}
    assert app.client.get("/api/v1/jobs/", params={"limit": 101}).status_code == 422
    assert app.client.get("/api/v1/jobs/", params={"status_filter": "weird"}).status_code == 422


def test_cancel_retry_delete_state_rules(
    app: VpaApp, done_job: dict[str, Any], media_server: Any
) -> None:
    job_id = done_job["id"]
    assert app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409
    assert app.client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 409
    hold = media_server.hold("long.mp4")  # the new job cannot end before it is cancelled
    try:
        new_id = app.submit(hold.url)["id"]
        assert app.client.delete(f"/api/v1/jobs/{new_id}").status_code == 409
        assert app.client.post(f"/api/v1/jobs/{new_id}/retry").status_code == 409
        cancelled = app.client.post(f"/api/v1/jobs/{new_id}/cancel")
    finally:
        hold.release()
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert app.client.delete(f"/api/v1/jobs/{new_id}").status_code == 200
    assert app.client.get(f"/api/v1/jobs/{new_id}").status_code == 404
    assert app.client.delete(f"/api/v1/jobs/{new_id}").status_code == 404
    unknown = "00000000-0000-0000-0000-000000000000"
    assert app.client.post(f"/api/v1/jobs/{unknown}/cancel").status_code == 404
    assert app.client.post(f"/api/v1/jobs/{unknown}/retry").status_code == 404


def test_delete_removes_artifact_files(app: VpaApp, sample_media: Any) -> None:
    job = app.wait(app.submit(sample_media.clip)["id"])
    assert job["status"] == "completed"
    job_dir = app.settings.artifact_path / job["id"]
    assert any(job_dir.iterdir())
    assert app.client.delete(f"/api/v1/jobs/{job['id']}").status_code == 200
    assert not job_dir.exists()
    assert app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").status_code == 404


def test_bulk_create_cancel_delete(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4")  # neither job can end before it is cancelled
    try:
        r = app.client.post(
            "/api/v1/jobs/bulk",
            json={
                "jobs": [
                    {"youtube_url": hold.url, "job_type": "analysis", "priority": 0},
                    {"youtube_url": hold.url + "?b", "job_type": "analysis", "priority": 0},
                ]
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["succeeded"] == 2 and body["failed"] == 0
        ids = [item["job_id"] for item in body["results"]]
        unknown = "00000000-0000-0000-0000-000000000000"
        r = app.client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": [*ids, unknown]})
    finally:
        hold.release()
    results = r.json()["results"]
    assert [x["status_code"] for x in results] == [200, 200, 404]
    assert [x["job"]["status"] for x in results[:2]] == ["cancelled", "cancelled"]
    assert not results[2]["ok"] and "not found" in results[2]["detail"]
    for job_id in ids:
        app.wait(job_id)
    r = app.client.post("/api/v1/jobs/bulk/delete", json={"job_ids": ids})
    assert r.json()["succeeded"] == 2
    assert app.client.post("/api/v1/jobs/bulk", json={"jobs": []}).status_code == 422


def test_queue_status_clear_statistics_workers_health(
    app: VpaApp, done_job: dict[str, Any]
) -> None:
    qs = app.client.get("/api/v1/jobs/queue/status").json()
    assert qs["max_concurrent_jobs"] == 2
    assert qs["queue_running"] is True
    assert {"queued_by_priority", "running", "queued"} <= set(qs)
    assert app.client.get("/api/v1/queue/status").status_code == 200
    cleared = app.client.delete("/api/v1/jobs/queue/clear")
    assert cleared.status_code == 200 and isinstance(cleared.json()["cleared"], int)
    stats = app.client.get("/api/v1/jobs/statistics").json()
    assert stats["by_status"]["completed"] >= 1
    assert "audio_extraction" in stats["by_job_type"]
    workers = app.client.get("/api/v1/workers").json()
    assert len(workers["workers"]) == 2
    assert all(w["state"] in {"idle", "busy"} and w["last_heartbeat"] for w in workers["workers"])
    assert any(r["deployment"] == "Ingress" for r in workers["replicas"])
    health = app.client.get("/health").json()
    assert health["status"] == "healthy"
    assert health["queue_running"] is True
    assert health["debug"] is False
    assert health["database"]["ok"] is True
    assert app.client.get("/docs").status_code == 200
    assert app.client.get("/redoc").status_code == 200
    assert "/api/v1/jobs/" in app.client.get("/openapi.json").json()["paths"]


def test_failures_give_clear_reasons_and_service_keeps_serving(
    app: VpaApp, sample_media: Any, media_server: Any
) -> None:
    cases = {
        media_server.url("missing.mp4"): "not_found",
        sample_media.not_media: "not_media",
        sample_media.silent: "no_audio",
    }
    jobs = {app.submit(url, max_retries=0)["id"]: code for url, code in cases.items()}
    truncated = app.submit(sample_media.truncated, max_retries=0)["id"]
    for job_id, code in jobs.items():
        job = app.wait(job_id)
        assert job["status"] == "failed", job
        assert job["error_code"] == code, job
        assert job["error_message"]
    job = app.wait(truncated)
    assert job["status"] == "failed" and job["error_message"]
    assert app.client.get("/health").status_code == 200


def test_garbage_body_is_422_not_500(app: VpaApp) -> None:
    r = app.client.post(
        "/api/v1/jobs/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    r = app.client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": ["nope"]})
    assert r.status_code == 422


def test_concurrent_submissions(app: VpaApp) -> None:
    import concurrent.futures

    def submit(i: int) -> int:
        with httpx.Client(base_url=app.base_url, timeout=60) as c:
            r = c.post(
                "/api/v1/jobs/",
                json={"youtube_url": SEED_URL, "job_type": "analysis", "priority": 0},
            )
            if r.status_code == 201:
                c.post(f"/api/v1/jobs/{r.json()['id']}/cancel")
            return r.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(submit, range(24)))
    assert codes == [201] * 24, codes
