"""`webhook_url` on a job submission: validated like `youtube_url`, checked by the same
address policy, refused while the server has no WEBHOOK_SECRET, shown on the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from config.settings import Settings
from deployments.api import create_app
from deployments.services import IngressServices
from storage.db import create_db_engine, init_db
from storage.repository import JobRepository
from storage.stores import StorageConfig, open_store
from tests.unit.test_api import NEW, FakeCoordinator, FakeHub
from tests.unit.test_webhooks import SECRET

HOOK = "http://93.184.216.34/hook"  # an address: no DNS lookup


def client(tmp_path: Path, **settings: Any) -> TestClient:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    repo = JobRepository(engine)
    store = open_store(
        StorageConfig(artifact_url=(tmp_path / "a").as_uri(), scratch_dir=str(tmp_path))
    )
    services = IngressServices(
        settings=Settings(**settings),
        repo=repo,
        store=store,
        coordinator=FakeCoordinator(repo),  # type: ignore[arg-type]
        hub=FakeHub(),
        replica_id="r1",
    )
    return TestClient(create_app(services))


def test_a_webhook_url_is_stored_and_shown(tmp_path: Path) -> None:
    api = client(tmp_path, webhook_secret=SECRET)
    r = api.post("/api/v1/jobs/", json={**NEW, "webhook_url": f"  {HOOK}  "})
    assert r.status_code == 201 and r.json()["webhook_url"] == HOOK
    assert api.get(f"/api/v1/jobs/{r.json()['id']}").json()["webhook_url"] == HOOK
    plain = api.post("/api/v1/jobs/", json=NEW).json()
    assert plain["webhook_url"] is None


def test_a_webhook_url_is_refused_like_a_source(tmp_path: Path) -> None:
    api = client(tmp_path, webhook_secret=SECRET)
    r = api.post("/api/v1/jobs/", json={**NEW, "webhook_url": "ftp://h.example/x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    assert "webhook_url must be an http:// or https:// URL" in r.json()["detail"][0]["msg"]
    r = api.post("/api/v1/jobs/", json={**NEW, "webhook_url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 422 and r.json()["code"] == "url_refused"
    assert r.json()["detail"].startswith("webhook_url: URL refused")
    bulk = api.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [{**NEW, "webhook_url": HOOK}, {**NEW, "webhook_url": "http://10.0.0.1/"}]},
    ).json()
    assert [(i["ok"], i["status_code"]) for i in bulk["results"]] == [(True, 201), (False, 422)]
    assert api.get("/api/v1/jobs/").json()["count"] == 1
    private = client(tmp_path / "p", webhook_secret=SECRET, allow_private_urls=True)
    r = private.post("/api/v1/jobs/", json={**NEW, "webhook_url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201


def test_no_secret_no_webhooks(tmp_path: Path) -> None:
    r = client(tmp_path).post("/api/v1/jobs/", json={**NEW, "webhook_url": HOOK})
    assert r.status_code == 422 and r.json()["code"] == "webhooks_disabled"
    assert "WEBHOOK_SECRET" in r.json()["detail"]
