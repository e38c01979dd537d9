"""WebSockets on two ingress replicas: initial status, ordered updates, the final message,
reconnect with missed updates, several clients, broadcast, health, connection counts.

A job whose updates a client must see downloads a held file (`media_server.hold`): it
waits until the clients are connected, then goes on (at a throttled rate, so that there is
progress to report) to the end.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def app(deploy_vpa: Any, sample_media: Any) -> VpaApp:
    return deploy_vpa(ingress_replicas=2, max_concurrent_jobs=2)


def ws(app: VpaApp, path: str) -> ClientConnection:
    return connect(app.ws_url + path, open_timeout=30, proxy=None)


def read_all(conn: ClientConnection, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Every message until the server closes the socket."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            out.append(json.loads(conn.recv(timeout=deadline - time.monotonic())))
    except ConnectionClosed:
        return out
    raise AssertionError(f"socket still open after {timeout_s} s; got {out}")


def check_stream(messages: list[dict[str, Any]], after: int | None = None) -> None:
    assert messages[0]["type"] == "initial_status"
    updates = [m for m in messages if m["type"] == "job_update"]
    seqs = [m["seq"] for m in updates]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # in order, no gaps
    if after is not None:
        assert seqs[0] == after + 1
    for m in updates:
        assert {"id", "status", "progress", "stage", "message", "updated_at"} <= set(m["data"])
    assert updates[-1]["data"]["status"] == "completed"
    assert messages[-1]["type"] == "job_finished"
    assert messages[-1]["data"]["status"] == "completed"


def test_job_socket_initial_updates_and_final(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4", rate=400_000)
    job = app.submit(hold.url, priority=10)
    try:
        with ws(app, f"/ws/{job['id']}") as conn:
            first = json.loads(conn.recv(timeout=30))
            hold.release()
            messages = [first, *read_all(conn)]
            assert conn.close_code == 1000
    finally:
        hold.release()
    assert first["data"]["id"] == job["id"]
    assert set(first["data"]) >= {"status", "progress", "youtube_url", "created_at"}
    check_stream(messages)
    progress = [m["data"]["progress"] for m in messages if m["type"] == "job_update"]
    assert progress == sorted(progress)
    assert any(m.get("event") == "progress" for m in messages)


def test_unknown_and_malformed_job_ids_close_with_documented_codes(app: VpaApp) -> None:
    with ws(app, "/ws/00000000-0000-0000-0000-000000000000") as conn:
        assert json.loads(conn.recv(timeout=10))["type"] == "error"
        with pytest.raises(ConnectionClosed):
            conn.recv(timeout=10)
        assert conn.close_code == 4404
    with ws(app, "/ws/not-a-job") as conn:
        conn.recv(timeout=10)
        with pytest.raises(ConnectionClosed):
            conn.recv(timeout=10)
        assert conn.close_code == 4400


def test_several_clients_on_both_replicas_get_every_update(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4", rate=300_000)
    job = app.submit(hold.url, priority=10)
    results: list[list[dict[str, Any]]] = [[] for _ in range(8)]
    connected = threading.Semaphore(0)

    def client(i: int) -> None:
        with ws(app, f"/ws/{job['id']}") as conn:
            first = json.loads(conn.recv(timeout=30))
            connected.release()
            results[i] = [first, *read_all(conn)]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for _ in threads:  # every client has its initial status before the job goes on
            assert connected.acquire(timeout=60), "a client never got its initial status"
    finally:
        hold.release()
    for t in threads:
        t.join(90)
    assert len({r[0]["replica"] for r in results}) == 2, "all clients landed on one replica"
    final_seq = max(r[-1]["seq"] for r in results)
    for messages in results:
        check_stream(messages)
        updates = [m for m in messages if m["type"] == "job_update"]
        # each client gets every update from the one after its initial status to the end
        assert updates[-1]["seq"] == final_seq
        assert updates[0]["seq"] == messages[0]["seq"] + 1


def test_reconnect_with_after_seq_receives_missed_updates(app: VpaApp, media_server: Any) -> None:
    hold = media_server.hold("long.mp4", rate=300_000)
    job = app.submit(hold.url, priority=10)
    try:
        with ws(app, f"/ws/{job['id']}") as conn:
            seen = [json.loads(conn.recv(timeout=30))]
            hold.release()
            seen += [json.loads(conn.recv(timeout=30)) for _ in range(2)]
    finally:
        hold.release()
    last = seen[-1]["seq"]
    app.wait(job["id"])
    with ws(app, f"/ws/{job['id']}?after_seq={last}") as conn:
        messages = read_all(conn)
    check_stream(messages, after=last)
    events = app.events(job["id"])
    assert [m["seq"] for m in messages if m["type"] == "job_update"] == [
        e["seq"] for e in events if e["seq"] > last
    ]


def test_broadcast_health_and_connection_counts(app: VpaApp, sample_media: Any) -> None:
    with ws(app, "/ws/jobs/broadcast") as bcast, ws(app, "/ws/health") as health:
        assert json.loads(bcast.recv(timeout=10))["type"] == "connected"
        assert json.loads(health.recv(timeout=10))["type"] == "connected"
        health.send(json.dumps({"type": "ping"}))
        assert json.loads(health.recv(timeout=10))["type"] == "pong"
        bcast.send("ping")
        assert json.loads(bcast.recv(timeout=10))["type"] == "pong"
        deadline = time.monotonic() + 15
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = app.client.get("/connections/status").json()
            if status["broadcast_connections"] >= 1 and status["health_connections"] >= 1:
                break
            time.sleep(0.2)
        assert status["broadcast_connections"] == 1
        assert status["health_connections"] == 1
        assert status["total_connections"] >= 2
        assert app.client.get("/ws/connections/status").status_code == 200
        ids = {app.submit(sample_media.clip)["id"] for _ in range(2)}
        for job_id in ids:
            app.wait(job_id)
        seen: dict[str, list[str]] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all("completed" in seen.get(i, []) for i in ids):
            m = json.loads(bcast.recv(timeout=30))
            seen.setdefault(m["job_id"], []).append(m["event"])
        for job_id in ids:
            assert seen[job_id][0] == "created"
            assert seen[job_id][-1] == "completed"


def test_a_client_that_never_reads_does_not_stall_others(app: VpaApp, sample_media: Any) -> None:
    with (
        connect(app.ws_url + "/ws/jobs/broadcast", proxy=None, max_queue=1),  # never read
        ws(app, "/ws/jobs/broadcast") as reader,
    ):
        reader.recv(timeout=10)
        ids = [app.submit(sample_media.clip)["id"] for _ in range(3)]
        completed: set[str] = set()
        deadline = time.monotonic() + 60
        while completed != set(ids) and time.monotonic() < deadline:
            m = json.loads(reader.recv(timeout=60))
            if m.get("event") == "completed":
                completed.add(m["job_id"])
        assert completed == set(ids)


def test_updates_survive_a_progress_hub_restart(app: VpaApp, media_server: Any) -> None:
    from actors.job_coordinator import HUB_NAME
    from tests.integration.conftest import kill_named

    hold = media_server.hold("long.mp4", rate=150_000)
    job = app.submit(hold.url, priority=10)
    try:
        with ws(app, f"/ws/{job['id']}") as conn:
            first = json.loads(conn.recv(timeout=30))
            kill_named(HUB_NAME)  # while the job is held: every update comes after the restart
            hold.release()
            messages = [first, *read_all(conn)]
    finally:
        hold.release()
    check_stream(messages)


def test_haproxy_holds_the_port_and_forwards_to_each_replica(
    app: VpaApp, ingress_env: dict[str, str]
) -> None:
    """INGRESS_PROXY=haproxy, the default: HAProxy's statistics list both Ingress replicas
    as its servers, both up and both reached, and nothing went through its fallback server
    (Serve's Python proxy actor)."""
    for _ in range(4):
        assert app.client.get("/health").status_code == 200
    port = ingress_env["RAY_SERVE_HAPROXY_STATS_PORT"]
    text = httpx.get(f"http://127.0.0.1:{port}/stats;csv", timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("# "))))
    servers = [r for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")]
    replicas = [r for r in servers if "-Ingress-" in r["svname"]]
    assert len(replicas) == 2, servers
    assert all(r["status"] == "UP" and int(r["stot"]) > 0 for r in replicas), replicas
    fallback = [r for r in servers if "PROXY_ACTOR" in r["svname"]]
    assert fallback and all(int(r["stot"]) == 0 for r in fallback), fallback
