"""PostgreSQL killed with SIGKILL, by the pid in its postmaster.pid, in the middle of a job,
then started again: the API answers 503 with Retry-After while it is down, recovers once
it is back, and no job is lost or run twice.

The server is this module's own (`running_postgres`), not the session's, which other tests
use. The job in flight downloads a held file (`media_server.hold`); its fetch stage ends
while the database is down, so the coordinator must keep that stage's completion until it
can write it. A second job waits in the queue (one job runs at a time) through the outage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.fixtures.databases import PostgresInstance, running_postgres
from tests.integration.conftest import VpaApp
from tests.integration.faults import sigkill
from tests.integration.test_faults import _assert_intact_audio_job, _stages


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresInstance]:
    with running_postgres(crash_safe=True) as server:  # what was committed stays committed
        yield server


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, own_postgres: PostgresInstance, sample_media: Any) -> VpaApp:
    return deploy_vpa(database_url=own_postgres.create_database("vpa"), max_concurrent_jobs=1)


def _kill_server(server: PostgresInstance) -> None:
    """SIGKILL the postmaster. Its backends and helpers notice and exit by themselves; any
    still there after a while are killed too (a new server refuses to start beside them)."""
    postmaster = psutil.Process(server.postmaster_pid())
    children = postmaster.children(recursive=True)
    sigkill(postmaster)
    _, alive = psutil.wait_procs(children, timeout=30)
    for proc in alive:
        sigkill(proc)


def _assert_database_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["detail"].startswith("the database is unavailable, try again shortly")


def _wait_api_back(app: VpaApp, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while app.client.get("/api/v1/jobs/").status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover after the database"
        time.sleep(0.2)


def test_postgres_killed_mid_job_then_restarted(
    app: VpaApp, own_postgres: PostgresInstance, media_server: Any
) -> None:
    clip = media_server.url("clip.mp4")
    hold = media_server.hold("clip.mp4")
    try:
        running = app.submit(hold.url)
        hold.wait_client_pid()  # its fetch stage is downloading, held
        waiting = app.submit(clip)  # queued behind it: one job at a time
        assert app.job(waiting["id"])["status"] == "queued"
        _kill_server(own_postgres)
        _assert_database_unavailable(app.client.get("/api/v1/jobs/"))
        _assert_database_unavailable(app.client.get(f"/api/v1/jobs/{running['id']}"))
        _assert_database_unavailable(
            app.client.post(
                "/api/v1/jobs/", json={"youtube_url": clip, "job_type": "audio_extraction"}
            )
        )
        hold.release()
        # The download ends and the fetch stage with it, while the database is still down.
        deadline = time.monotonic() + 60
        while hold.client_pids():
            assert time.monotonic() < deadline, "the held download did not end"
            time.sleep(0.05)
        time.sleep(1.0)  # the stage's completion now waits for the database
        _assert_database_unavailable(app.client.get(f"/api/v1/jobs/{running['id']}"))
    finally:
        hold.release()
        if not _running(own_postgres):
            own_postgres.start()
    _wait_api_back(app)

    done = _assert_intact_audio_job(app, running["id"])
    events = app.events(running["id"])
    assert done["attempt"] == 1  # the attempt went on: nothing was retried or recovered
    assert _stages(events, "stage_started") == ["fetch", "audio"]
    assert not {"failed", "retry_scheduled", "recovered"} & {e["type"] for e in events}
    _assert_intact_audio_job(app, waiting["id"])
    after = app.submit(clip)
    _assert_intact_audio_job(app, after["id"])
    # the submission refused while the database was down left no job behind
    listed = app.client.get("/api/v1/jobs/", params={"limit": 100}).json()
    assert sorted(j["id"] for j in listed["data"]) == sorted(
        [running["id"], waiting["id"], after["id"]]
    )


def _running(server: PostgresInstance) -> bool:
    try:
        return psutil.Process(server.postmaster_pid()).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, FileNotFoundError):
        return False
