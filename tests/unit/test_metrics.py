"""vpa's metrics without a Ray cluster: the relay of Ray's expositions (deployments/
metrics_relay.py) and `GET /metrics` over real HTTP endpoints standing in for two Ray
nodes' metrics agents, who may read it, and a node that does not answer. (On the real
service, recorded through Ray: tests/integration/test_metrics.py.)"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from actors import metrics
from config.settings import Settings
from deployments.api import create_app
from deployments.metrics_relay import relay, vpa_lines
from deployments.routes import metrics as metrics_route
from storage.repository import JobRepository
from tests.unit.test_api import make_services
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, new_key
from tests.unit.test_api_keys import repo as repo  # the fixture

RAY = (
    'Component="core_worker",NodeAddress="10.0.0.{node}",SessionName="session_x",'
    'Version="2.60.0",otel_scope_name="ray",otel_scope_schema_url="",otel_scope_version=""'
)


def header(name: str, kind: str) -> list[str]:
    return [f"# HELP {name} what it is", f"# TYPE {name} {kind}"]


def node_text(node: int, jobs: float, sockets: float) -> str:
    """One node's exposition as Ray writes it: two processes' series, and Ray's own."""
    ray = RAY.format(node=node)
    lines = [*header("ray_tasks", "gauge"), f"ray_tasks{{{ray}}} 7.0"]  # one of Ray's own
    lines += header("ray_vpa_jobs_total", "counter")
    for worker in ("a", "b"):
        labels = f'{ray},WorkerId="{worker}{node}",job_type="transcription",status="completed"'
        lines.append(f"ray_vpa_jobs_total{{{labels}}} {jobs}")
    lines += header("ray_vpa_jobs_extra_total", "counter")  # a name that vpa_jobs begins
    lines.append(f"ray_vpa_jobs_extra_total{{{ray}}} 1.0")
    lines += header("ray_vpa_websocket_connections", "gauge")
    lines.append(f'ray_vpa_websocket_connections{{{ray},WorkerId="w{node}",kind="job"}} {sockets}')
    lines += header("ray_vpa_stage_duration_seconds", "histogram")
    stage = f'{ray},WorkerId="c{node}",stage="fetch"'
    for le, count in (("0.1", 0.0), ("1.0", 1.0), ("+Inf", 2.0)):
        lines.append(f'ray_vpa_stage_duration_seconds_bucket{{{stage},le="{le}"}} {count}')
    lines.append(f"ray_vpa_stage_duration_seconds_count{{{stage}}} 2.0")
    lines.append(f"ray_vpa_stage_duration_seconds_sum{{{stage}}} 3.5")
    return "\n".join(lines) + "\n"


def parsed(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def test_the_relay_sums_vpa_figures_over_processes_and_nodes() -> None:
    out = parsed(relay([node_text(1, 2.0, 3.0), node_text(2, 5.0, 4.0)]).decode())
    assert set(out) == {spec.name for spec in metrics.SPECS}  # every family, nothing else
    labels = {"job_type": "transcription", "status": "completed"}
    assert out["vpa_jobs"] == [("vpa_jobs_total", labels, 14.0)]  # 2 processes x 2 nodes
    assert out["vpa_websocket_connections"] == [("vpa_websocket_connections", {"kind": "job"}, 7.0)]
    assert out["vpa_stage_duration_seconds"] == [
        ("vpa_stage_duration_seconds_bucket", {"stage": "fetch", "le": "0.1"}, 0.0),
        ("vpa_stage_duration_seconds_bucket", {"stage": "fetch", "le": "1.0"}, 2.0),
        ("vpa_stage_duration_seconds_bucket", {"stage": "fetch", "le": "+Inf"}, 4.0),
        ("vpa_stage_duration_seconds_count", {"stage": "fetch"}, 4.0),
        ("vpa_stage_duration_seconds_sum", {"stage": "fetch"}, 7.0),
    ]
    assert out["vpa_queue_depth"] == [] and out["vpa_webhook_deliveries"] == []


def test_only_vpa_lines_are_parsed() -> None:
    kept = vpa_lines(node_text(1, 1.0, 1.0))
    assert "ray_tasks" not in kept
    assert "# TYPE ray_vpa_jobs_total counter" in kept and "WorkerId" in kept


def test_each_figure_records_through_ray_without_complaint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="vpa.metrics"):
        metrics.job_counted("submitted", "transcription")
        metrics.queue_sizes(3, 1)
        metrics.stage_finished("fetch", 1.5)
        metrics.transcribed(2.0, 10.0)
        metrics.transcribed(2.0, None)  # no duration, no factor
        metrics.stage_figures({"clip_cut": [["smart", 0.8]]})
        metrics.websocket_connections({"job": 2, "broadcast": 0, "health": 1})
        metrics.webhook_attempt("delivered")
    assert caplog.records == []
    assert metrics.JOBS.exposed == ("vpa_jobs_total",)
    assert metrics.CLIP_CUT.exposed[0] == "vpa_clip_cut_seconds_bucket"


# -- GET /metrics ----------------------------------------------------------------------------


def serve_text(text: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Two nodes' metrics agents on 127.0.0.1, as `ray.nodes()` would list them."""
    servers = [serve_text(node_text(1, 1.0, 2.0)), serve_text(node_text(2, 1.0, 1.0))]
    urls = [f"http://127.0.0.1:{s.server_address[1]}/metrics" for s in servers]
    monkeypatch.setattr(metrics_route, "metric_endpoints", lambda: list(urls))
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


def test_metrics_relays_every_node(tmp_path: Path, repo: JobRepository, nodes: list[str]) -> None:
    client = TestClient(create_app(make_services(tmp_path, repo)))  # keys off: open
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out = parsed(r.text)
    assert out["vpa_jobs"][0][2] == 4.0
    assert out["vpa_websocket_connections"][0][2] == 3.0


def test_metrics_needs_the_admin_key(tmp_path: Path, repo: JobRepository, nodes: list[str]) -> None:
    client = TestClient(create_app(make_services(tmp_path, repo, admin_api_key=ADMIN)))
    assert client.get("/metrics").status_code == 401
    user = {"X-API-Key": new_key(client)["key"]}
    r = client.get("/metrics", headers=user)
    assert r.status_code == 403 and "admin key" in r.json()["detail"]
    assert client.get("/metrics", headers=ADMIN_HEADERS).status_code == 200


def test_the_metrics_key_reads_metrics_and_nothing_else(
    tmp_path: Path, repo: JobRepository, nodes: list[str]
) -> None:
    scraper = "scrape-only-" + "m" * 20
    services = make_services(tmp_path, repo, admin_api_key=ADMIN, metrics_api_key=scraper)
    client = TestClient(create_app(services))
    bearer = {"Authorization": f"Bearer {scraper}"}
    r = client.get("/metrics", headers=bearer)
    assert r.status_code == 200, r.text
    assert parsed(r.text)["vpa_jobs"][0][2] == 4.0
    assert client.get("/metrics", headers={"X-API-Key": scraper}).status_code == 200
    assert client.get("/metrics", headers=ADMIN_HEADERS).status_code == 200  # still
    # not an API key: every other route refuses it
    assert client.get("/api/v1/jobs/", headers=bearer).status_code == 401
    assert client.get("/api/v1/keys", headers=bearer).status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {scraper}x"})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]


def test_a_short_metrics_key_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="metrics_api_key must be at least"):
        Settings(_env_file=None, metrics_api_key="short")


def test_a_node_that_does_not_answer_fails_the_scrape(
    tmp_path: Path, repo: JobRepository, nodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{s.getsockname()[1]}/metrics"
    monkeypatch.setattr(metrics_route, "metric_endpoints", lambda: [*nodes, gone])
    client = TestClient(create_app(make_services(tmp_path, repo)))
    r = client.get("/metrics")
    assert r.status_code == 503, r.text
    assert gone in r.json()["detail"] and r.headers["retry-after"] == "5"


def test_outside_ray_metrics_lists_the_families_without_samples(
    tmp_path: Path, repo: JobRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # outside Ray, whatever this test session started before (the integration tests' Ray
    # instance lives until the session ends)
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    assert metrics_route.metric_endpoints() == []
    client = TestClient(create_app(make_services(tmp_path, repo)))
    out = parsed(client.get("/metrics").text)
    assert set(out) == {spec.name for spec in metrics.SPECS}
    assert all(samples == [] for samples in out.values())
