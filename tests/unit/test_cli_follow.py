"""Following a job (cli/follow.py) without a server: what the messages do to the state,
where a reconnection resumes, and giving up on a server that does not answer."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cli.client import Target
from cli.errors import ApiError, Unreachable
from cli.follow import MAX_FAILURES, STAGE_CHAINS, FollowState, backoff_s, follow, socket_url
from pipeline.stages import STAGE_CHAINS as SERVICE_CHAINS


def test_the_clients_stage_chains_are_the_services() -> None:
    assert STAGE_CHAINS == SERVICE_CHAINS


def test_socket_urls() -> None:
    assert socket_url("http://127.0.0.1:8000/", "abc", None) == "ws://127.0.0.1:8000/ws/abc"
    assert socket_url("HTTPS://vpa.example", "abc", 7) == "wss://vpa.example/ws/abc?after_seq=7"
    assert socket_url("http://h", "a/../b?x", 0) == "ws://h/ws/a%2F..%2Fb%3Fx?after_seq=0"


def _update(seq: int, event: str, stage: str | None = None, **data: Any) -> dict[str, Any]:
    body = {"status": "processing", "progress": None, "stage": stage, "event": event, **data}
    return {"type": "job_update", "seq": seq, "data": body}


def _job(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "j", "job_type": "audio_extraction", "status": status, "progress": 0, **fields}


def test_updates_are_taken_once_each_in_order_across_a_reconnection() -> None:
    state = FollowState("j")
    state.apply({"type": "initial_status", "seq": 2, "data": _job("queued")})
    assert state.last_seq == 2 and state.stages == {"fetch": 0.0, "audio": 0.0}
    assert state.apply(_update(3, "stage_started", "fetch", message="fetch started")) == (
        "fetch started"
    )
    assert state.apply(_update(4, "progress", "fetch", event_data={"stage_fraction": 0.5})) is None
    assert state.stages["fetch"] == 0.5
    # the connection drops; the next one starts with the job as it is now (seq 6), then
    # replays 4 (already taken), 5 and 6
    state.apply({"type": "initial_status", "seq": 6, "data": _job("processing", progress=30)})
    assert state.last_seq == 4, "a reconnection's initial_status must not skip the replay"
    assert state.apply(_update(4, "progress", "fetch")) is None
    state.apply(_update(5, "stage_completed", "fetch", progress=30.0, message="fetch done"))
    state.apply(_update(6, "stage_started", "audio"))
    assert state.seen == [3, 4, 5, 6] and state.last_seq == 6
    assert state.stages == {"fetch": 1.0, "audio": 0.0} and state.progress == 30.0
    assert not state.finished
    done = _job("completed", progress=100, stage_timings={"fetch": 0.1, "audio": 0.2})
    state.apply({"type": "job_finished", "seq": 8, "data": done})
    assert state.finished and state.status == "completed" and state.progress == 100.0
    assert state.stages == {"fetch": 1.0, "audio": 1.0}


def test_lines_worth_showing() -> None:
    state = FollowState("j")
    assert state.apply(_update(1, "created")) == "created"
    assert state.apply(_update(2, "queued", message="queued")) == "queued"
    failed = _update(3, "failed", "fetch", status="failed", message="not a media file")
    assert state.apply(failed) == "failed: not a media file"
    assert state.status == "failed"


def test_an_error_message_is_kept_for_the_close_that_follows() -> None:
    state = FollowState("j")
    state.apply({"type": "error", "detail": "Job j not found"})
    assert state.error == "Job j not found" and state.last_seq is None


def test_backoff() -> None:
    assert [backoff_s(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0]


def test_a_server_that_stays_away_is_given_up_after_max_failures() -> None:
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pauses: list[float] = []
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(Unreachable, match=f"cannot reach vpa at {url}"):
        follow(Target(url), "j", lambda *_: None, sleep=pauses.append)
    assert pauses == [backoff_s(n) for n in range(1, MAX_FAILURES)]


@pytest.fixture
def refusing() -> Iterator[tuple[str, list[int]]]:
    """A loopback HTTP server that refuses every WebSocket handshake with the status in
    its list (the first item), as vpa, HAProxy or a restarting Serve would."""
    status = [503]

    class Refuse(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # what a WebSocket client reads

        def do_GET(self) -> None:
            body = json.dumps({"detail": f"refused with {status[0]}"}).encode()
            self.send_response(status[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", status
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_handshake_is_retried_on_5xx_and_final_on_4xx(
    refusing: tuple[str, list[int]],
) -> None:
    url, status = refusing
    pauses: list[float] = []
    with pytest.raises(Unreachable, match="503: refused with 503"):
        follow(Target(url), "j", lambda *_: None, sleep=pauses.append)
    assert len(pauses) == MAX_FAILURES - 1
    status[0] = 401
    pauses.clear()
    with pytest.raises(ApiError, match="401: refused with 401"):
        follow(Target(url), "j", lambda *_: None, sleep=pauses.append)
    assert pauses == []
