"""Processes killed with SIGKILL, by the pid each reports, in the middle of a job: a stage
task, the coordinator, an ingress replica. Every job completes with its files intact, no
stage runs twice at once, and WebSocket clients miss no update.

The job in flight downloads a held file (`media_server.hold`): its fetch stage cannot end
before the test has acted, and goes on once the test releases it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psutil
import pytest
import ray
from websockets.exceptions import ConnectionClosed

from actors.job_coordinator import HUB_NAME, coordinator_name
from tests.integration.conftest import NAMESPACE, VpaApp
from tests.integration.faults import (
    REPLICA_PREFIX,
    SERVE_NAMESPACE,
    actor_pid,
    sigkill,
    wait_new_pid,
)
from tests.integration.processes import describe, gone, kill_if_running
from tests.integration.test_websockets import check_stream, read_all, ws


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, sample_media: Any) -> VpaApp:
    return deploy_vpa(ingress_replicas=2, max_concurrent_jobs=2)


def _stages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["stage"] for e in events if e["type"] == kind]


def _assert_intact_audio_job(app: VpaApp, job_id: str) -> dict[str, Any]:
    """Completed once: each stage completed exactly once, both files stored and served."""
    done = app.wait(job_id, timeout_s=120)
    assert done["status"] == "completed", done
    events = app.events(job_id)
    assert _stages(events, "stage_completed") == ["fetch", "audio"]
    assert [e["type"] for e in events].count("completed") == 1
    arts = app.client.get(f"/api/v1/jobs/{job_id}/artifacts").json()
    assert sorted(a["kind"] for a in arts) == ["audio", "source"]
    for art in arts:
        body = app.client.get(art["download_url"])
        assert body.status_code == 200 and len(body.content) == art["size_bytes"] > 0, art
    return done


def _coordinator_pid(app: VpaApp) -> int:
    return actor_pid(ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE))


def _hub_pid() -> int:
    return actor_pid(ray.get_actor(HUB_NAME, namespace=NAMESPACE))


def test_stage_task_killed_mid_download_is_retried(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("clip.mp4")
    try:
        job = app.submit(hold.url, max_retries=3)
        # The process holding the download is the fetch stage's Ray worker.
        worker = psutil.Process(hold.wait_client_pid())
        sigkill(worker)
        retry_pid = hold.wait_client_pid()  # raises if two processes download at once
        assert retry_pid != worker.pid
    finally:
        hold.release()
    done = _assert_intact_audio_job(app, job["id"])
    assert done["attempt"] == 2
    events = app.events(job["id"])
    retries = [e for e in events if e["type"] == "retry_scheduled"]
    assert [(e["stage"], e["data"]["error_code"]) for e in retries] == [("fetch", "worker_crashed")]
    assert _stages(events, "stage_started") == ["fetch", "fetch", "audio"]


def test_coordinator_process_killed_mid_job(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("clip.mp4")
    old = _coordinator_pid(app)
    try:
        job = app.submit(hold.url)
        first = psutil.Process(hold.wait_client_pid())
        sigkill(psutil.Process(old))
        # The coordinator's stage tasks die with it; the new one resumes the job, and at no
        # time do two processes download for it.
        deadline = time.monotonic() + 120
        while not gone(first):
            assert hold.client_pids() <= {first.pid}, "two processes downloaded for one job"
            assert time.monotonic() < deadline, f"the first attempt lives on: {describe(first)}"
            time.sleep(0.05)
        assert hold.wait_client_pid() != first.pid
    finally:
        hold.release()
    done = _assert_intact_audio_job(app, job["id"])
    events = app.events(job["id"])
    assert "recovered" in [e["type"] for e in events]
    assert _stages(events, "stage_started") == ["fetch", "fetch", "audio"]
    assert done["attempt"] == 2
    assert wait_new_pid(lambda: _coordinator_pid(app), old) != old


def _ingress_pid(replica_tag: str) -> int:
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"]
        if (
            entry["namespace"] == SERVE_NAMESPACE
            and name.startswith(f"{REPLICA_PREFIX}vpa#Ingress#")
            and name.endswith(f"#{replica_tag}")
        ):
            return actor_pid(ray.get_actor(name, namespace=SERVE_NAMESPACE))
    raise AssertionError(f"no Ingress replica {replica_tag}")


def test_ingress_replica_killed_under_a_websocket(app: VpaApp, media_server: Any) -> None:
    """The client on the killed replica reconnects with `?after_seq=<last seq>` and, over
    both sockets, receives every update exactly once."""
    hold = media_server.hold("long.mp4", rate=400_000)
    try:
        job = app.submit(hold.url)
        hold.wait_client_pid()
        before: list[dict[str, Any]] = []
        with ws(app, f"/ws/{job['id']}") as conn:
            before.append(json.loads(conn.recv(timeout=30)))
            replica = psutil.Process(_ingress_pid(before[0]["replica"]))
            sigkill(replica)
            with pytest.raises(ConnectionClosed):
                while True:  # what was sent before the socket went down
                    before.append(json.loads(conn.recv(timeout=60)))
        last = max(m["seq"] for m in before)
        hold.release()
        with ws(app, f"/ws/{job['id']}?after_seq={last}") as conn:
            after = read_all(conn, timeout_s=120)
    finally:
        hold.release()
    _assert_intact_audio_job(app, job["id"])
    assert after[0]["replica"] != before[0]["replica"]
    check_stream(after, after=last)
    seqs = [m["seq"] for m in [*before, *after] if m["type"] == "job_update"]
    events = app.events(job["id"])
    assert seqs == [e["seq"] for e in events if e["seq"] > before[0]["seq"]]


def test_progress_hub_killed_mid_job(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4", rate=400_000)
    hub = psutil.Process(_hub_pid())
    try:
        job = app.submit(hold.url)
        hold.wait_client_pid()
        with ws(app, f"/ws/{job['id']}") as conn:
            first = json.loads(conn.recv(timeout=30))
            sigkill(hub)
            hold.release()
            messages = [first, *read_all(conn, timeout_s=120)]
            assert conn.close_code == 1000
    finally:
        hold.release()
        kill_if_running(hub)
    _assert_intact_audio_job(app, job["id"])
    # The socket got every update once, in order, to the end: what the hub lost was filled
    # in from the database.
    check_stream(messages)
    events = app.events(job["id"])
    assert [m["seq"] for m in messages if m["type"] == "job_update"] == [
        e["seq"] for e in events if e["seq"] > first["seq"]
    ]
    assert wait_new_pid(_hub_pid, hub.pid) != hub.pid
    assert app.client.get(f"/api/v1/jobs/{job['id']}").status_code == 200
