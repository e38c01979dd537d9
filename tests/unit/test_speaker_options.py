"""Speaker diarization options: `diarization`, `num_speakers`, `min_speakers`,
`max_speakers` (storage/speaker_options.py). Counts are 1-20; combinations that cannot hold
are a 422 naming the option; diarization on a job that reads no speech is `invalid_options`,
alone and in a bulk submission (that item only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from deployments.api import create_app
from pipeline.options import stage_options
from storage.db import create_db_engine, init_db
from storage.repository import JobRepository
from storage.schemas import ProcessingOptions
from tests.unit.test_api import NEW, make_services


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"diarization": True, "num_speakers": 0}, "num_speakers"),
        ({"diarization": True, "num_speakers": 21}, "num_speakers"),
        ({"diarization": True, "min_speakers": 0}, "min_speakers"),
        ({"diarization": True, "max_speakers": 21}, "max_speakers"),
        ({"diarization": True, "max_speakers": 2.5}, "max_speakers"),
        ({"diarization": True, "min_speakers": 4, "max_speakers": 3}, "min_speakers (4)"),
        ({"diarization": True, "num_speakers": 2, "min_speakers": 3}, "num_speakers (2)"),
        ({"diarization": True, "num_speakers": 5, "max_speakers": 4}, "num_speakers (5)"),
        (
            {"diarization": True, "num_speakers": 6, "min_speakers": 2, "max_speakers": 5},
            "max_speakers (5)",
        ),
        ({"num_speakers": 2}, "num_speakers needs diarization: true"),
        ({"min_speakers": 2}, "min_speakers needs diarization: true"),
        ({"diarization": False, "max_speakers": 3}, "max_speakers needs diarization: true"),
        ({"min_speakers": 1, "max_speakers": 3}, "min_speakers, max_speakers needs diarization"),
    ],
)
def test_refused_counts_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ProcessingOptions.model_validate(options)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"diarization": True},
        {"diarization": True, "num_speakers": 2},
        {"diarization": True, "num_speakers": 1, "min_speakers": 1, "max_speakers": 1},
        {"diarization": True, "num_speakers": 3, "min_speakers": 2, "max_speakers": 20},
        {"diarization": True, "min_speakers": 2},
        {"diarization": True, "max_speakers": 20},
        {"diarization": False},
    ],
)
def test_accepted_counts_reach_the_transcriber(options: dict[str, Any]) -> None:
    stored = ProcessingOptions.model_validate(options).model_dump(mode="json")
    transcribe = stage_options(stored).transcribe
    assert transcribe.diarization == options["diarization"]
    assert transcribe.num_speakers == options.get("num_speakers")
    assert transcribe.min_speakers == options.get("min_speakers")
    assert transcribe.max_speakers == options.get("max_speakers")


def test_off_by_default() -> None:
    transcribe = stage_options(ProcessingOptions().model_dump(mode="json")).transcribe
    assert not transcribe.diarization and transcribe.num_speakers is None


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    return TestClient(create_app(make_services(tmp_path, JobRepository(engine))))


def test_the_api_refuses_and_accepts(client: TestClient) -> None:
    diarized = {"diarization": True, "num_speakers": 2}
    for job_type in ("transcription", "analysis", "clip_generation", "full_processing"):
        body = {**NEW, "job_type": job_type, "options": diarized}
        created = client.post("/api/v1/jobs/", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["options"]["diarization"] is True
        assert created.json()["options"]["num_speakers"] == 2
    # counts that cannot hold: FastAPI's 422, located at the options
    bad = {**NEW, "options": {"diarization": True, "min_speakers": 3, "max_speakers": 2}}
    refused = client.post("/api/v1/jobs/", json=bad)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["body", "options"] and "min_speakers (3)" in error["msg"]
    # an audio_extraction job reads no speech
    audio = {**NEW, "job_type": "audio_extraction", "options": {"diarization": True}}
    refused = client.post("/api/v1/jobs/", json=audio)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_options"
    assert "options.diarization" in refused.json()["detail"]
    assert "audio_extraction" in refused.json()["detail"]
    plain_audio = {**NEW, "job_type": "audio_extraction"}
    assert client.post("/api/v1/jobs/", json=plain_audio).status_code == 201


def test_bulk_refuses_only_that_item(client: TestClient) -> None:
    audio = {**NEW, "job_type": "audio_extraction", "options": {"diarization": True}}
    diarized = {**NEW, "options": {"diarization": True}}
    bulk = client.post("/api/v1/jobs/bulk", json={"jobs": [diarized, audio]})
    assert bulk.status_code == 200, bulk.text
    results = bulk.json()["results"]
    assert [(r["ok"], r["status_code"]) for r in results] == [(True, 201), (False, 422)]
    assert "options.diarization" in results[1]["detail"]
    # counts that cannot hold refuse the whole body, as every invalid option does
    bad = {**NEW, "options": {"num_speakers": 2}}
    refused = client.post("/api/v1/jobs/bulk", json={"jobs": [diarized, bad]})
    assert refused.status_code == 422
    assert "num_speakers needs diarization" in refused.text
