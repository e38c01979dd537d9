"""The API while its database cannot be reached: every read answers 503 with a reason and a
`Retry-After`, never a 500. The database here is a PostgreSQL URL whose server socket does
not exist, so each query fails in the driver the way it does while the server is down."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.errors import DatabaseUnavailable
from config.settings import Settings
from deployments.api import create_app
from deployments.services import IngressServices
from storage.db import create_db_engine, init_db
from storage.repository import JobRepository
from storage.schemas import JobCreate
from storage.stores import StorageConfig, open_store
from tests.unit.test_api import FakeCoordinator, FakeHub

JOB = "00000000-0000-0000-0000-000000000001"
URL = "http://127.0.0.1/v.mp4"


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


class _CoordinatorWithoutDatabase(FakeCoordinator):
    """What the coordinator actor raises for a command while the database is down."""

    async def call(self, method: str, *args: Any) -> Any:
        raise DatabaseUnavailable("the database is unavailable, try again shortly (refused)")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/jobs/", {"youtube_url": URL, "job_type": "audio_extraction"}),
        ("POST", "/api/v1/jobs/{job}/cancel", None),  # a job the replica can read
        ("DELETE", "/api/v1/jobs/queue/clear", None),
    ],
)
def test_commands_answer_503_while_the_coordinator_cannot_reach_the_database(
    tmp_path: Path, method: str, path: str, body: dict[str, Any] | None
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    repo = JobRepository(engine)
    services = IngressServices(
        settings=Settings(_env_file=None, allow_private_urls=True),
        repo=repo,
        store=open_store(
            StorageConfig(artifact_url=(tmp_path / "a").as_uri(), scratch_dir=str(tmp_path))
        ),
        coordinator=_CoordinatorWithoutDatabase(repo),  # type: ignore[arg-type]
        hub=FakeHub(),
        replica_id="r1",
    )
    job, _ = repo.create_job(
        JobCreate.model_validate({"youtube_url": URL, "job_type": "audio_extraction"}),
        default_max_retries=3,
        now=datetime.now(UTC),
    )
    client = TestClient(create_app(services), raise_server_exceptions=False)
    r = client.request(method, path.format(job=job.id), json=body)
    assert r.status_code == 503, r.text
    assert r.json()["detail"] == "the database is unavailable, try again shortly (refused)"
    assert r.headers["retry-after"] == "1"
