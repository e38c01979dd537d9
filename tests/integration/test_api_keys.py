"""API keys on the real service: two Ingress replicas behind HAProxy, keys in the real
database. Without a key 401 (HTTP and the WebSocket handshake); a key the admin made
works; once revoked, every replica refuses it at once."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.conftest import TERMINAL, VpaApp

ADMIN = "integration-admin-key-0123456789"


@pytest.fixture(scope="module")
def secured(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(ingress_replicas=2, admin_api_key=ADMIN)


def replica_requests(stats_port: str) -> dict[str, int]:
    """Connections HAProxy sent to each Ingress replica so far (its statistics CSV)."""
    text = httpx.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=10).text
    rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    return {r["svname"]: int(r["stot"]) for r in rows if "-Ingress-" in r["svname"]}


def test_a_key_works_until_revoked_on_every_replica(
    secured: VpaApp, sample_media: Any, ingress_env: dict[str, str]
) -> None:
    base, ws_base = secured.base_url, secured.ws_url
    anonymous = httpx.get(f"{base}/api/v1/jobs/", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ws_base}/ws/jobs/broadcast", open_timeout=30, proxy=None)
    assert refused.value.response.status_code == 401

    admin = {"Authorization": f"Bearer {ADMIN}"}
    made = httpx.post(f"{base}/api/v1/keys", json={"name": "alice"}, headers=admin, timeout=30)
    assert made.status_code == 201, made.text
    key = made.json()["key"]

    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as alice:
        body = {"youtube_url": sample_media.clip, "job_type": "audio_extraction"}
        job = alice.post("/api/v1/jobs/", json=body)
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        with connect(f"{ws_base}/ws/{job_id}?api_key={key}", open_timeout=30, proxy=None) as ws:
            messages = []
            for raw in ws:
                messages.append(raw)
        assert '"job_finished"' in messages[-1]
        assert alice.get(f"/api/v1/jobs/{job_id}").json()["status"] in TERMINAL

    revoked = httpx.delete(f"{base}/api/v1/keys/{made.json()['id']}", headers=admin, timeout=30)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    before = replica_requests(ingress_env["RAY_SERVE_HAPROXY_STATS_PORT"])
    assert len(before) == 2
    for _ in range(12):  # a new connection each: HAProxy spreads them over both replicas
        r = httpx.get(f"{base}/api/v1/jobs/", headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    after = replica_requests(ingress_env["RAY_SERVE_HAPROXY_STATS_PORT"])
    assert all(after[name] > before[name] for name in before), (before, after)
    with pytest.raises(InvalidStatus):
        connect(f"{ws_base}/ws/jobs/broadcast?api_key={key}", open_timeout=30, proxy=None)
    # the admin key still works, and so does /health without any key
    assert httpx.get(f"{base}/api/v1/keys", headers=admin, timeout=30).status_code == 200
    assert httpx.get(f"{base}/health", timeout=30).status_code == 200


def test_each_key_sees_only_its_own_jobs_live(secured: VpaApp, sample_media: Any) -> None:
    """Two keys on the real service: bob's broadcast socket never gets alice's updates,
    alice's job is a 404 for bob, and the admin's list holds both keys' jobs."""
    base, ws_base = secured.base_url, secured.ws_url
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def make(name: str) -> str:
        r = httpx.post(f"{base}/api/v1/keys", json={"name": name}, headers=admin, timeout=30)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    alice, bob = make("alice"), make("bob")
    body = {"youtube_url": sample_media.clip, "job_type": "audio_extraction"}
    with (
        connect(f"{ws_base}/ws/jobs/broadcast?api_key={bob}", open_timeout=30, proxy=None) as b,
        connect(f"{ws_base}/ws/jobs/broadcast?api_key={alice}", open_timeout=30, proxy=None) as a,
    ):
        assert '"connected"' in b.recv(timeout=30) and '"connected"' in a.recv(timeout=30)
        posted = httpx.post(f"{base}/api/v1/jobs/", json=body, headers={"X-API-Key": alice})
        alices = posted.json()["id"]
        bobs = httpx.post(f"{base}/api/v1/jobs/", json=body, headers={"X-API-Key": bob}).json()
        seen: dict[str, set[str]] = {"alice": set(), "bob": set()}
        for name, sock, own in (("alice", a, alices), ("bob", b, bobs["id"])):
            while True:  # until its own job's last update
                message = json.loads(sock.recv(timeout=60))
                seen[name].add(message["job_id"])
                if message["job_id"] == own and message["data"]["status"] in TERMINAL:
                    break
        assert seen == {"alice": {alices}, "bob": {bobs["id"]}}
    assert httpx.get(f"{base}/api/v1/jobs/{alices}", headers={"X-API-Key": bob}).status_code == 404
    listed = httpx.get(f"{base}/api/v1/jobs/", headers=admin, params={"limit": 100}).json()
    assert {alices, bobs["id"]} <= {j["id"] for j in listed["data"]}
    mine = httpx.get(f"{base}/api/v1/jobs/", headers={"X-API-Key": bob}).json()
    assert [j["id"] for j in mine["data"]] == [bobs["id"]]


def test_a_keys_limits_hold_for_the_whole_service(
    secured: VpaApp, sample_media: Any, media_server: Any
) -> None:
    """Per-key limits are counted by the coordinator, so requests spread by HAProxy over
    both Ingress replicas (a new connection each) meet the same limits."""
    base = secured.base_url
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def make(**limits: int) -> dict[str, str]:
        body = {"name": "limited", **limits}
        r = httpx.post(f"{base}/api/v1/keys", json=body, headers=admin, timeout=30)
        assert r.status_code == 201, r.text
        return {"X-API-Key": r.json()["key"]}

    def post(headers: dict[str, str], url: str) -> httpx.Response:
        body = {"youtube_url": url, "job_type": "audio_extraction"}
        return httpx.post(f"{base}/api/v1/jobs/", json=body, headers=headers, timeout=60)

    fast = make(rate_limit_per_minute=2)
    assert [post(fast, sample_media.clip).status_code for _ in range(2)] == [201, 201]
    refused = post(fast, sample_media.clip)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert post(admin, sample_media.clip).status_code == 201  # the admin has no limit

    busy = make(max_active_jobs=1)
    hanging = media_server.url("hang/clip.mp4")
    first = post(busy, hanging)
    assert first.status_code == 201, first.text
    second = post(busy, hanging)
    assert second.status_code == 429 and "already has 1 job" in second.json()["detail"]
    cancelled = httpx.post(
        f"{base}/api/v1/jobs/{first.json()['id']}/cancel", headers=busy, timeout=60
    )
    assert cancelled.json()["status"] == "cancelled"
    third = post(busy, hanging)  # room again
    assert third.status_code == 201, third.text
    httpx.post(f"{base}/api/v1/jobs/{third.json()['id']}/cancel", headers=busy, timeout=60)
