"""Out-of-range input is a 422 naming the field, never a 500: integers beyond what the
database binds, floats that are not finite, text no database stores, datetimes that leave
years 1-9999 in UTC. The app runs on the fakes of `test_api` (no Ray)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from config.settings import Settings
from deployments.api import create_app, json_safe
from deployments.services import IngressServices
from storage.db import create_db_engine, init_db
from storage.repository import JobRepository
from storage.schemas import INT32_MAX
from storage.stores import StorageConfig, open_store
from tests.unit.test_api import NEW, FakeCoordinator, FakeHub, completed_job

HUGE = "9" * 29  # the integer that once reached SQLite's bind and answered 500


@pytest.fixture
def services(tmp_path: Path) -> IngressServices:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    repo = JobRepository(engine)
    store = open_store(
        StorageConfig(artifact_url=(tmp_path / "a").as_uri(), scratch_dir=str(tmp_path))
    )
    services = IngressServices(
        settings=Settings(),
        repo=repo,
        store=store,
        coordinator=FakeCoordinator(repo),  # type: ignore[arg-type]
        hub=FakeHub(),
        replica_id="r1",
    )
    return services


@pytest.fixture
def client(services: IngressServices) -> TestClient:
    return TestClient(create_app(services), raise_server_exceptions=False)


@pytest.fixture
def job_id(client: TestClient) -> str:
    return str(client.post("/api/v1/jobs/", json=NEW).json()["id"])


def refused_field(response: Any) -> list[Any]:
    """The `loc` of the one error of a 422."""
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["msg"]
    return list(error["loc"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"offset={HUGE}", "offset"),
        (f"offset={2**63}", "offset"),
        (f"offset={INT32_MAX + 1}", "offset"),
        ("offset=-1", "offset"),
        (f"limit={HUGE}", "limit"),
        ("limit=0", "limit"),
        (f"min_priority={HUGE}", "min_priority"),
        ("min_priority=11", "min_priority"),
        ("created_after=0001-01-01T00:00:00%2B05:00", "created_after"),
        ("created_before=9999-12-31T23:00:00-05:00", "created_before"),
    ],
)
def test_list_query_out_of_range(client: TestClient, query: str, field: str) -> None:
    assert refused_field(client.get(f"/api/v1/jobs/?{query}")) == ["query", field]


def test_list_query_at_the_bounds(client: TestClient, job_id: str) -> None:
    r = client.get(f"/api/v1/jobs/?offset={INT32_MAX}&limit=100&min_priority=0")
    assert r.status_code == 200 and r.json()["data"] == [] and r.json()["count"] == 1
    r = client.get("/api/v1/jobs/?created_after=0001-01-01T00:00:00-05:00")
    assert [j["id"] for j in r.json()["data"]] == [job_id]
    out_of_range = client.get("/api/v1/jobs/?created_after=0001-01-01T00:00:00%2B05:00")
    assert "out of range in UTC" in out_of_range.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"after_seq={HUGE}", "after_seq"),
        (f"after_seq={INT32_MAX + 1}", "after_seq"),
        ("after_seq=-1", "after_seq"),
        (f"limit={HUGE}", "limit"),
    ],
)
def test_events_query_out_of_range(client: TestClient, job_id: str, query: str, field: str) -> None:
    r = client.get(f"/api/v1/jobs/{job_id}/events?{query}")
    assert refused_field(r) == ["query", field]


def test_events_after_the_largest_seq(client: TestClient, job_id: str) -> None:
    r = client.get(f"/api/v1/jobs/{job_id}/events?after_seq={INT32_MAX}&limit=10000")
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("after_seq", [HUGE, str(INT32_MAX + 1), "-1", "abc"])
def test_socket_refuses_bad_after_seq(client: TestClient, job_id: str, after_seq: str) -> None:
    with client.websocket_connect(f"/ws/{job_id}?after_seq={after_seq}") as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert error["type"] == "error" and error["detail"][0]["loc"] == ["query", "after_seq"]
    assert closed.value.code == 1008


def test_socket_takes_the_largest_after_seq(
    client: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, _ = completed_job(services, tmp_path)
    with client.websocket_connect(f"/ws/{job.id}?after_seq={INT32_MAX}") as ws:
        messages = [ws.receive_json()["type"], ws.receive_json()["type"]]
    assert messages == ["initial_status", "job_finished"]


def body(**fields: Any) -> dict[str, Any]:
    return {**NEW, **fields}


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (f'"priority": {HUGE}', ["priority"]),
        ('"priority": 1e400', ["priority"]),
        (f'"max_retries": {HUGE}', ["max_retries"]),
        ('"max_retries": 11', ["max_retries"]),
        (f'"options": {{"max_clips": {HUGE}}}', ["options", "max_clips"]),
        (f'"options": {{"beam_size": -{HUGE}}}', ["options", "beam_size"]),
        ('"options": {"clip_duration": NaN}', ["options", "clip_duration"]),
        ('"options": {"clip_duration": 1e308}', ["options", "clip_duration"]),
        ('"options": {"overlap_duration": -Infinity}', ["options", "overlap_duration"]),
        ('"options": {"min_confidence": Infinity}', ["options", "min_confidence"]),
        (
            '"options": {"segments": [{"start": 0, "end": Infinity}]}',
            ["options", "segments", 0, "end"],
        ),
        (
            '"options": {"segments": [{"start": 0, "end": 1e308}]}',
            ["options", "segments", 0, "end"],
        ),
        (
            '"options": {"segments": [{"start": NaN, "end": 5}]}',
            ["options", "segments", 0, "start"],
        ),
    ],
)
def test_body_numbers_out_of_range(client: TestClient, raw: str, loc: list[Any]) -> None:
    text = '{"youtube_url": "http://93.184.216.34/v", "job_type": "clip_generation", ' + raw + "}"
    headers = {"content-type": "application/json"}
    assert refused_field(client.post("/api/v1/jobs/", content=text, headers=headers)) == [
        "body",
        *loc,
    ]
    bulk = '{"jobs": [' + text + "]}"
    r = client.post("/api/v1/jobs/bulk", content=bulk, headers=headers)
    assert refused_field(r) == ["body", "jobs", 0, *loc]


@pytest.mark.parametrize(
    ("fields", "loc", "why"),
    [
        ({"youtube_url": "http://a\u0000b/v"}, ["youtube_url"], "NUL"),
        ({"idempotency_key": "k\u0000"}, ["idempotency_key"], "NUL"),
        ({"idempotency_key": "\ud800"}, ["idempotency_key"], "surrogates"),
        (
            {"options": {"segments": [{"start": 0, "end": 2, "title": "\udc00"}]}},
            ["options", "segments", 0, "title"],
            "surrogates",
        ),
    ],
)
def test_body_text_no_database_stores(
    client: TestClient, fields: dict[str, Any], loc: list[Any], why: str
) -> None:
    # json.dumps writes an unpaired surrogate as the escape "\ud800", valid JSON a client
    # may send; the 422 echoes it back as text, not as a 500 while encoding.
    r = post_json(client, body(**fields))
    assert refused_field(r) == ["body", *loc]
    assert why in r.json()["detail"][0]["msg"]


def post_json(client: TestClient, value: Any) -> Any:
    headers = {"content-type": "application/json"}
    return client.post("/api/v1/jobs/", content=json.dumps(value), headers=headers)


def test_unpaired_surrogate_in_a_url_is_a_422(client: TestClient) -> None:
    r = post_json(client, body(youtube_url="\ud800"))
    assert refused_field(r) == ["body", "youtube_url"]
    assert r.json()["detail"][0]["input"] == "\\ud800"


def test_bulk_ids_must_be_uuids(client: TestClient) -> None:
    r = client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": [HUGE]})
    assert refused_field(r) == ["body", "job_ids", 0]
    r = client.post("/api/v1/jobs/bulk/delete", json={"job_ids": [NEW] * 501})
    assert r.status_code == 422


def test_json_safe_writes_any_refused_input() -> None:
    value = {"a": [math.inf, -math.inf, math.nan, 1.5], "\ud800": "x\udc00"}
    assert json_safe(value) == {"a": ["inf", "-inf", "nan", 1.5], "\\ud800": "x\\udc00"}
