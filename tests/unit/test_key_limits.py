"""Limits per API key (issue 11, item 3): creations a minute (actors/key_limits.py, a moving
window in the coordinator) and jobs active at once (counted in the submission's own
transaction, storage/submissions.py); 429s at the API, per item in bulk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.errors import TooManyRequests
from actors.key_limits import CreationRate
from deployments.api import create_app
from deployments.services import IngressServices
from storage.models import EventType, JobStatus, JobType
from storage.repository import JobRepository
from storage.schemas import JobCreate
from storage.submissions import Refused, Submission, Submitted
from tests.unit.coordinator_fakes import MakeHarness
from tests.unit.test_api import NEW, FakeCoordinator
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, make_services
from tests.unit.test_api_keys import repo as repo  # the fixture

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def data(key: str | None = None) -> JobCreate:
    return JobCreate(
        youtube_url="https://media.example/v.mp4",
        job_type=JobType.audio_extraction,
        idempotency_key=key,
    )


# -- creations a minute ------------------------------------------------------------------------


def test_a_key_creates_its_limit_a_minute_then_waits() -> None:
    rate = CreationRate()
    for _ in range(3):
        rate.take("alice", 3)
    with pytest.raises(TooManyRequests) as refused:
        rate.take("alice", 3)
    assert refused.value.status_code == 429
    assert refused.value.retry_after_s is not None and 1 <= refused.value.retry_after_s <= 60
    assert "3 job(s) a minute" in refused.value.detail
    rate.take("bob", 3)  # another key has its own window
    for _ in range(100):
        rate.take("carol", None)  # no limit


def test_the_refusal_survives_the_trip_through_ray() -> None:
    import pickle

    again = pickle.loads(pickle.dumps(TooManyRequests("slow down", retry_after_s=7)))
    assert (again.detail, again.retry_after_s, again.status_code) == ("slow down", 7, 429)


# -- jobs active at once -----------------------------------------------------------------------


def test_jobs_past_a_keys_active_limit_are_refused_in_the_same_transaction(
    repo: JobRepository,
) -> None:
    def store(*batch: Submission) -> list[Submitted | Refused]:
        return repo.create_queued_jobs(list(batch), default_max_retries=3, now=T0)

    first = store(*(Submission(data(), "alice", 2) for _ in range(3)), Submission(data(), "bob", 2))
    assert [type(o) for o in first] == [Submitted, Submitted, Refused, Submitted]
    assert first[2] == Refused(2)
    assert isinstance(store(Submission(data(), "alice", 2))[0], Refused)
    assert isinstance(store(Submission(data(), "alice", None))[0], Submitted)  # no limit
    # one of alice's jobs ends: room for one more (of her limit of 3 now)
    done = first[0]
    assert isinstance(done, Submitted)
    for status, event in (
        (JobStatus.processing, EventType.started),
        (JobStatus.completed, EventType.completed),
    ):
        repo.transition(done.job.id, event=event, fields={"status": status}, now=T0)
    assert isinstance(store(Submission(data(), "alice", 3))[0], Submitted)


def test_a_repeated_idempotency_key_is_never_refused(repo: JobRepository) -> None:
    kept = repo.create_queued_jobs(
        [Submission(data("nightly"), "alice", 1)], default_max_retries=3, now=T0
    )
    again = repo.create_queued_jobs(
        [Submission(data("nightly"), "alice", 1)], default_max_retries=3, now=T0
    )
    assert isinstance(kept[0], Submitted) and isinstance(again[0], Submitted)
    assert again[0].job.id == kept[0].job.id and not again[0].created


async def test_the_coordinator_refuses_past_the_active_limit(make_harness: MakeHarness) -> None:
    h = make_harness(max_concurrent_jobs=1)
    await h.core.submit(data(), "alice", 1)
    with pytest.raises(TooManyRequests, match="already has 1 job"):
        await h.core.submit(data(), "alice", 1)
    await h.core.submit(data(), "bob", 1)  # another key


# -- at the API --------------------------------------------------------------------------------


class LimitedCoordinator(FakeCoordinator):
    """Refuses every submission as the coordinator does past a rate limit; records them."""

    def __init__(self, repo: JobRepository) -> None:
        super().__init__(repo)
        self.submissions: list[tuple[Any, ...]] = []

    async def call(self, method: str, *args: Any) -> Any:
        if method == "submit":
            self.submissions.append(args[1:])
            if args[0].get("priority") == 9:
                raise TooManyRequests("slow down", retry_after_s=16.2)
        return await super().call(method, *args)


@pytest.fixture
def limited(tmp_path: Path, repo: JobRepository) -> tuple[TestClient, IngressServices]:
    services = make_services(
        tmp_path,
        repo,
        admin_api_key=ADMIN,
        rate_limit_per_minute=30,
        max_active_jobs_per_key=5,
    )
    services.coordinator = LimitedCoordinator(repo)  # type: ignore[assignment]
    return TestClient(create_app(services)), services


def test_a_refusal_is_a_429_with_retry_after(limited: tuple[TestClient, Any]) -> None:
    client, _ = limited
    r = client.post("/api/v1/jobs/", json={**NEW, "priority": 9}, headers=ADMIN_HEADERS)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "17" and r.json() == {"detail": "slow down"}
    bulk = {"jobs": [NEW, {**NEW, "priority": 9}]}
    r = client.post("/api/v1/jobs/bulk", json=bulk, headers=ADMIN_HEADERS)
    assert r.status_code == 200
    assert [i["status_code"] for i in r.json()["results"]] == [201, 429]


def test_each_key_brings_its_limits_the_admin_none(limited: tuple[TestClient, Any]) -> None:
    client, services = limited
    own = {"name": "batch", "rate_limit_per_minute": 600, "max_active_jobs": 50}
    made = client.post("/api/v1/keys", json=own, headers=ADMIN_HEADERS).json()
    assert (made["rate_limit_per_minute"], made["max_active_jobs"]) == (600, 50)
    plain = client.post("/api/v1/keys", json={"name": "plain"}, headers=ADMIN_HEADERS).json()
    assert (plain["rate_limit_per_minute"], plain["max_active_jobs"]) == (None, None)
    for headers in ({"X-API-Key": made["key"]}, {"X-API-Key": plain["key"]}, ADMIN_HEADERS):
        assert client.post("/api/v1/jobs/", json=NEW, headers=headers).status_code == 201
    assert services.coordinator.submissions == [
        (made["id"], 600, 50),
        (plain["id"], 30, 5),  # the settings' limits
        ("admin", None, None),
    ]


@pytest.mark.parametrize("field", ["rate_limit_per_minute", "max_active_jobs"])
@pytest.mark.parametrize("value", [0, -1, 10**9, "many"])
def test_a_bad_key_limit_is_a_422(limited: tuple[TestClient, Any], field: str, value: Any) -> None:
    client, _ = limited
    r = client.post("/api/v1/keys", json={"name": "x", field: value}, headers=ADMIN_HEADERS)
    assert r.status_code == 422
