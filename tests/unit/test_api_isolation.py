"""Per-key isolation (issue 11, item 2): a job belongs to the API key that made it; another
key gets 404 for it everywhere and sees only its own jobs in lists, statistics, the queue
and the broadcast socket; the admin key sees all; idempotency keys are per API key."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deployments.api import create_app
from deployments.fanout import Fanout, Update, encode, visible
from deployments.services import IngressServices
from storage.models import EventType, JobStatus
from storage.repository import JobRepository
from tests.unit.test_api import NEW, T0, completed_job
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, make_services
from tests.unit.test_api_keys import repo as repo  # the fixture

Headers = dict[str, str]


@pytest.fixture
def services(tmp_path: Path, repo: JobRepository) -> IngressServices:
    return make_services(tmp_path, repo, admin_api_key=ADMIN)


@pytest.fixture
def client(services: IngressServices) -> TestClient:
    return TestClient(create_app(services))


def key(client: TestClient, name: str) -> Headers:
    r = client.post("/api/v1/keys", json={"name": name}, headers=ADMIN_HEADERS)
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def submit(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/jobs/", json={**NEW, **body}, headers=headers)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_another_keys_job_is_not_found_anywhere(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    alice, bob = key(client, "alice"), key(client, "bob")
    job, artifact = completed_job(services, tmp_path)  # the admin's
    mine = submit(client, alice)["id"]
    for headers, job_id in ((bob, mine), (bob, str(job.id)), (alice, str(job.id))):
        for method, path in [
            ("GET", f"/api/v1/jobs/{job_id}"),
            ("GET", f"/api/v1/jobs/{job_id}/events"),
            ("GET", f"/api/v1/jobs/{job_id}/artifacts"),
            ("GET", f"/api/v1/jobs/{job_id}/artifacts/{artifact.id}/download"),
            ("GET", f"/api/v1/jobs/{job_id}/download"),
            ("POST", f"/api/v1/jobs/{job_id}/cancel"),
            ("POST", f"/api/v1/jobs/{job_id}/retry"),
            ("DELETE", f"/api/v1/jobs/{job_id}"),
        ]:
            r = client.request(method, path, headers=headers)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert r.json()["detail"] == f"Job {job_id} not found"
        with client.websocket_connect(f"/ws/{job_id}", headers=headers) as ws:
            assert ws.receive_json() == {"type": "error", "detail": f"Job {job_id} not found"}
    # the owner and the admin do see them
    assert client.get(f"/api/v1/jobs/{mine}", headers=alice).status_code == 200
    assert client.get(f"/api/v1/jobs/{mine}", headers=ADMIN_HEADERS).status_code == 200
    download = f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download"
    assert client.get(download, headers=ADMIN_HEADERS).status_code == 200


def test_bulk_commands_treat_another_keys_jobs_as_missing(client: TestClient) -> None:
    alice, bob = key(client, "alice"), key(client, "bob")
    theirs, mine = submit(client, alice)["id"], submit(client, bob)["id"]
    for action in ("cancel", "delete"):
        r = client.post(f"/api/v1/jobs/bulk/{action}", json={"job_ids": [theirs]}, headers=bob)
        item = r.json()["results"][0]
        assert (item["ok"], item["status_code"]) == (False, 404), item
    r = client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": [mine]}, headers=bob)
    assert r.json()["results"][0]["status_code"] != 404  # bob's own reaches the coordinator


def test_lists_statistics_and_the_queue_show_a_key_its_own_jobs(client: TestClient) -> None:
    alice, bob = key(client, "alice"), key(client, "bob")
    alices = {submit(client, alice)["id"] for _ in range(3)}
    bobs = {submit(client, bob)["id"]}
    for headers, own in ((alice, alices), (bob, bobs), (ADMIN_HEADERS, alices | bobs)):
        listed = client.get("/api/v1/jobs/", headers=headers).json()
        assert {j["id"] for j in listed["data"]} == own and listed["count"] == len(own)
        stats = client.get("/api/v1/jobs/statistics", headers=headers).json()
        assert stats["total_jobs"] == len(own)


def test_the_queue_status_of_a_key_counts_and_names_only_its_own(
    client: TestClient, services: IngressServices
) -> None:
    alice, bob = key(client, "alice"), key(client, "bob")
    alices = [submit(client, alice)["id"] for _ in range(2)]
    bobs = [submit(client, bob)["id"]]
    ids = [uuid.UUID(i) for i in alices + bobs]
    for job_id in ids:  # queued, as the coordinator would have them
        queued = {"status": JobStatus.queued}
        services.repo.transition(job_id, event=EventType.queued, fields=queued, now=T0)

    class QueueCoordinator:  # the coordinator's report: every job
        async def call(self, method: str, *args: Any) -> Any:
            assert method == "queue_status"
            return {
                "queue_running": True,
                "max_concurrent_jobs": 2,
                "queued": 3,
                "queued_count_by_priority": {"5": 3},
                "queued_by_priority": {"5": [str(i) for i in ids]},
                "queued_order": [str(i) for i in ids],
                "waiting_for_retry": [],
                "running": [],
                "running_count": 0,
                "available_slots": 2,
            }

    services.coordinator = QueueCoordinator()  # type: ignore[assignment]
    mine = client.get("/api/v1/jobs/queue/status", headers=alice).json()
    assert mine["queued"] == 2 and mine["queued_count_by_priority"] == {"5": 2}
    assert mine["queued_order"] == alices and mine["queued_by_priority"] == {"5": alices}
    assert mine["available_slots"] == 2  # the service's, not the key's
    everyone = client.get("/api/v1/jobs/queue/status", headers=ADMIN_HEADERS).json()
    assert everyone["queued"] == 3


def test_idempotency_keys_are_per_api_key(client: TestClient) -> None:
    alice, bob = key(client, "alice"), key(client, "bob")
    first = submit(client, alice, idempotency_key="nightly-1")
    again = client.post(
        "/api/v1/jobs/", json={**NEW, "idempotency_key": "nightly-1"}, headers=alice
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    bobs = client.post("/api/v1/jobs/", json={**NEW, "idempotency_key": "nightly-1"}, headers=bob)
    assert bobs.status_code == 201 and bobs.json()["id"] != first["id"]


async def test_a_broadcast_socket_of_a_key_gets_only_its_own_jobs() -> None:
    def update(owner: str | None) -> Update:
        message = {"type": "job_update", "job_id": "j", "seq": 1}
        return Update(1, message, encode(message), owner)

    assert visible(update("alice"), None) and visible(update(None), None)  # the admin
    assert visible(update("alice"), "alice")
    assert not visible(update("bob"), "alice") and not visible(update(None), "alice")

    fan = Fanout(lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    admin, alice = fan.subscribe("broadcast"), fan.subscribe("broadcast", scope="alice")
    fan._cursors["broadcast"] = 0
    published = [
        {"type": "job_update", "job_id": job, "seq": 1, "owner": owner}
        for job, owner in (("a1", "alice"), ("b1", "bob"))
    ]
    fan._deliver("broadcast", list(enumerate(published, start=1)))
    assert [u.message["job_id"] for u in await admin.take() if u is not None] == ["a1", "b1"]
    got = [u for u in await alice.take() if u is not None]
    assert [u.message["job_id"] for u in got] == ["a1"]
    assert "owner" not in got[0].message and '"owner"' not in got[0].text  # never sent
