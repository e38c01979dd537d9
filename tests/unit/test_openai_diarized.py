"""Speakers through the OpenAI-compatible route: OpenAI's diarizing model name
(`gpt-4o-transcribe-diarize`) or format (`diarized_json`) asks the job for diarization, and
the answer carries the speakers (diarized_json's segments, SRT/VTT labels, a text paragraph
per turn); a plain whisper-1 request stays undiarized."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from storage.models import JobStatus
from storage.repository import JobRepository
from tests.unit.test_api_keys import repo as repo  # the fixture
from tests.unit.test_openai_api import app_with, end, transcribe
from tests.unit.test_openai_responses import SEGMENTS

SPOKEN = [
    {**SEGMENTS[0], "speaker": "Speaker 1"},
    {**SEGMENTS[1], "speaker": "Speaker 2"},
]
SPEAKERS = [
    {"speaker": "Speaker 1", "talk_time": 1.5, "turns": 1, "words": 2},
    {"speaker": "Speaker 2", "talk_time": 1.5, "turns": 1, "words": 2},
]


def diarized(repo: JobRepository, job_id: uuid.UUID) -> None:
    fields = {"transcript": " Hello there. General Kenobi.", "segments": SPOKEN}
    end(repo, job_id, JobStatus.completed, **fields, speakers=SPEAKERS, duration=4.0)


@pytest.mark.parametrize(
    ("model", "response_format"),
    [("gpt-4o-transcribe-diarize", "diarized_json"), ("whisper-1", "diarized_json")],
)
def test_diarized_json_is_openais_shape_with_speakers(
    tmp_path: Path, repo: JobRepository, model: str, response_format: str
) -> None:
    client, coordinator = app_with(tmp_path, repo, diarized)
    r = transcribe(client, model=model, response_format=response_format)
    assert r.status_code == 200, r.text
    assert coordinator.submitted[0]["options"]["diarization"] is True
    body = r.json()
    assert (body["task"], body["duration"], body["text"]) == (
        "transcribe",
        4.0,
        "Hello there. General Kenobi.",
    )
    assert body["segments"] == [
        {"type": "transcript.text.segment", "id": "seg_0", "start": 0.0, "end": 1.5,
         "text": "Hello there.", "speaker": "Speaker 1"},
        {"type": "transcript.text.segment", "id": "seg_1", "start": 2.0, "end": 3.5,
         "text": "General Kenobi.", "speaker": "Speaker 2"},
    ]  # fmt: skip


def test_the_diarizing_model_labels_text_and_subtitles(tmp_path: Path, repo: JobRepository) -> None:
    client, coordinator = app_with(tmp_path, repo, diarized)
    model = "gpt-4o-transcribe-diarize"
    text = transcribe(client, model=model, response_format="text")
    assert text.status_code == 200, text.text
    assert text.text == "Speaker 1: Hello there.\n\nSpeaker 2: General Kenobi.\n"
    srt = transcribe(client, model=model, response_format="srt").text
    assert "Speaker 1: Hello there." in srt and "Speaker 2: General Kenobi." in srt
    vtt = transcribe(client, model=model, response_format="vtt").text
    assert "<v Speaker 2>General Kenobi." in vtt
    assert all(job["options"]["diarization"] for job in coordinator.submitted)


def test_whisper_1_asks_for_no_speakers(tmp_path: Path, repo: JobRepository) -> None:
    client, coordinator = app_with(tmp_path, repo)
    r = transcribe(client, response_format="text")
    assert r.status_code == 200 and r.text == "Hello there. General Kenobi.\n"
    assert coordinator.submitted[0]["options"]["diarization"] is False


def test_the_models_list_names_the_diarizing_model(tmp_path: Path, repo: JobRepository) -> None:
    client, _ = app_with(tmp_path, repo)
    listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert listed == ["whisper-1", "tiny.en", "gpt-4o-transcribe-diarize"]
    card: Any = client.get("/v1/models/gpt-4o-transcribe-diarize").json()
    assert card["id"] == "gpt-4o-transcribe-diarize"
