"""Security checks generated from the OpenAPI schema (issue 11, item 8): every route that
names a job, called with another API key, is a 404 (a new route cannot forget the check);
the routes without a job leak none of another key's; traversal in ids goes nowhere;
oversized bodies are 413 before they are read, oversized options 422. (Every route without
a key: tests/unit/test_api_keys.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from deployments.api import create_app
from deployments.services import IngressServices
from storage.repository import JobRepository
from tests.unit.test_api import NEW, FakeHub, completed_job
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, make_services
from tests.unit.test_api_keys import repo as repo  # the fixture

MAX_BYTES = 64 * 1024


@pytest.fixture
def services(tmp_path: Path, repo: JobRepository) -> IngressServices:
    admin = ADMIN
    return make_services(tmp_path, repo, admin_api_key=admin, max_request_bytes=MAX_BYTES)


@pytest.fixture
def client(services: IngressServices) -> TestClient:
    return TestClient(create_app(services))


def key(client: TestClient, name: str) -> tuple[str, dict[str, str]]:
    made = client.post("/api/v1/keys", json={"name": name}, headers=ADMIN_HEADERS).json()
    return made["id"], {"X-API-Key": made["key"]}


def operations(client: TestClient) -> Iterator[tuple[str, str]]:
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        for method in ops:
            yield method.upper(), path


def test_every_route_naming_a_job_is_a_404_for_another_key(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    alice_id, _ = key(client, "alice")
    _, bob = key(client, "bob")
    job, artifact = completed_job(services, tmp_path)
    with services.repo.engine.begin() as conn:  # the job is alice's
        conn.execute(sa.text("UPDATE jobs SET owner = :o"), {"o": alice_id})
    values = {"job_id": str(job.id), "artifact_id": str(artifact.id)}
    called = 0
    for method, path in operations(client):
        if "{job_id}" not in path:
            continue
        filled = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        r = client.request(method, filled, headers=bob)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["detail"] == f"Job {job.id} not found"
        called += 1
    assert called >= 8  # get, events, artifacts, download(s), cancel, retry, delete
    with client.websocket_connect(f"/ws/{job.id}", headers=bob) as ws:
        assert ws.receive_json()["type"] == "error"


def test_routes_without_a_job_leak_none_of_another_keys(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    alice_id, _ = key(client, "alice")
    _, bob = key(client, "bob")
    client.post("/api/v1/jobs/", json=NEW, headers=bob)  # bob has one of his own
    job, _ = completed_job(services, tmp_path)
    with services.repo.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE jobs SET owner = :o WHERE id = :j"), {"o": alice_id, "j": job.id.hex}
        )
    watched = {"total_connections": 3, "job_connections": {str(job.id): 3}, "replicas": {}}
    services.hub.connection_status = FakeHub.Awaited(watched)  # alice's job has sockets
    checked = 0
    for method, path in operations(client):
        if method != "GET" or "{" in path:
            continue
        r = client.get(path, headers=bob)
        assert r.status_code in (200, 403, 503), (path, r.status_code)  # 403: admin only
        assert str(job.id) not in r.text and alice_id not in r.text, path
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize(
    "artifact_id",
    # (a bare ".." is resolved by the client to the job's own zip route: not a traversal)
    ["..%2F..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e%2f%2e%2e%2fvpa.db", "%2e%2e"],
)
def test_traversal_in_an_artifact_id_goes_nowhere(
    client: TestClient, services: IngressServices, tmp_path: Path, artifact_id: str
) -> None:
    job, _ = completed_job(services, tmp_path)
    r = client.get(f"/api/v1/jobs/{job.id}/artifacts/{artifact_id}/download", headers=ADMIN_HEADERS)
    assert r.status_code in (404, 422), (artifact_id, r.status_code)
    assert "root:" not in r.text and "SQLite" not in r.text


def test_a_body_over_the_limit_is_a_413_unread(client: TestClient) -> None:
    big = {**NEW, "idempotency_key": "k", "padding": "x" * MAX_BYTES}
    r = client.post("/api/v1/jobs/", json=big, headers=ADMIN_HEADERS)
    assert r.status_code == 413 and "MAX_REQUEST_BYTES" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
        yield b'{"youtube_url": "http://93.184.216.34/v.mp4", "job_type": "analysis", "x": "'
        for _ in range(MAX_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    headers = {**ADMIN_HEADERS, "Content-Type": "application/json"}
    r = client.post("/api/v1/jobs/", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert client.get("/api/v1/jobs/", headers=ADMIN_HEADERS).json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {**NEW, "youtube_url": "http://93.184.216.34/" + "v" * 3000},
        {**NEW, "idempotency_key": "k" * 201},
        {**NEW, "options": {"max_clips": 10**6}},
        {**NEW, "options": {"segments": [{"start": 0, "end": 1}] * 101}},
        {**NEW, "options": {"segments": [{"start": 0, "end": 1, "title": "t" * 201}]}},
        {**NEW, "options": {"unknown_option": True}},
        {"jobs": [NEW] * 101},
    ],
)
def test_oversized_options_are_a_422(client: TestClient, body: dict[str, Any]) -> None:
    path = "/api/v1/jobs/bulk" if "jobs" in body else "/api/v1/jobs/"
    r = client.post(path, json=body, headers=ADMIN_HEADERS)
    assert r.status_code == 422, r.text[:300]
