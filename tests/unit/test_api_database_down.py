"""The API while its database cannot be reached: every read answers 503 with a reason and a
`Retry-After`, never a 500. The database here is a PostgreSQL URL whose server socket does
not exist, so each query fails in the driver the way it does while the server is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from deployments.api import create_app
from deployments.services import IngressServices
from storage.db import create_db_engine
from storage.repository import JobRepository
from storage.stores import StorageConfig, open_store
from tests.unit.test_api import FakeCoordinator, FakeHub

JOB = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    engine = create_db_engine(f"postgresql://vpa@/vpa?host={tmp_path / 'no-server'}&port=5999")
    repo = JobRepository(engine)
    store = open_store(
        StorageConfig(artifact_url=(tmp_path / "a").as_uri(), scratch_dir=str(tmp_path))
    )
    services = IngressServices(
        settings=Settings(_env_file=None),
        repo=repo,
        store=store,
        coordinator=FakeCoordinator(repo),  # type: ignore[arg-type]
        hub=FakeHub(),
        replica_id="r1",
    )
    return TestClient(create_app(services), raise_server_exceptions=False)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/",
        f"/api/v1/jobs/{JOB}",
        f"/api/v1/jobs/{JOB}/events",
        f"/api/v1/jobs/{JOB}/artifacts",
    ],
)
def test_reads_answer_503_while_the_database_is_down(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith("the database is unavailable, try again shortly (")
    assert "no-server" in r.json()["detail"]  # the driver's reason: which server it tried
    assert r.headers["retry-after"] == "1"
