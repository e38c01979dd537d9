"""Tables, enums, the status state machine and the API schemas (no database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from actors.messages import is_terminal_status
from storage.bulk_schemas import BulkItemResult, BulkJobCreate, BulkJobIds
from storage.models import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    Artifact,
    EventType,
    InvalidTransitionError,
    Job,
    JobEvent,
    JobStatus,
    JobType,
    can_transition,
)
from storage.schemas import (
    ArtifactPublic,
    JobCreate,
    JobEventPublic,
    JobListQuery,
    JobPublic,
    ProcessingOptions,
)

S = JobStatus


def test_every_status_has_a_transition_row_and_terminal_set() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)
    assert {S.completed, S.failed, S.cancelled} == TERMINAL_STATUSES
    # live updates end on the same set, whether they see the enum or its JSON value
    assert {s for s in JobStatus if is_terminal_status(s)} == TERMINAL_STATUSES
    assert {s.value for s in JobStatus if is_terminal_status(s.value)} == {
        s.value for s in TERMINAL_STATUSES
    }
    assert not is_terminal_status(None) and not is_terminal_status("finished")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.pending, S.queued),
        (S.pending, S.cancelled),
        (S.pending, S.failed),
        (S.queued, S.processing),
        (S.queued, S.cancelled),
        (S.queued, S.failed),
        (S.processing, S.completed),
        (S.processing, S.failed),
        (S.processing, S.cancelled),
        (S.processing, S.queued),
        (S.failed, S.queued),
        (S.cancelled, S.queued),
    ],
)
def test_allowed_transitions(current: JobStatus, target: JobStatus) -> None:
    assert can_transition(current, target)
    assert can_transition(current.value, target.value)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.pending, S.processing),
        (S.pending, S.completed),
        (S.queued, S.completed),
        (S.completed, S.queued),
        (S.completed, S.failed),
        (S.failed, S.processing),
        (S.cancelled, S.completed),
        (S.processing, S.pending),
    ],
)
def test_forbidden_transitions(current: JobStatus, target: JobStatus) -> None:
    assert not can_transition(current, target)


def test_completed_is_final() -> None:
    assert not any(can_transition(S.completed, target) for target in JobStatus)


def test_invalid_transition_error_carries_both_states() -> None:
    err = InvalidTransitionError("completed", S.queued)
    assert err.current is S.completed and err.target is S.queued
    assert "completed" in str(err) and "queued" in str(err)


def test_enums_are_strings_with_expected_members() -> None:
    assert [t.value for t in JobType] == [
        "audio_extraction",
        "transcription",
        "analysis",
        "clip_generation",
        "full_processing",
    ]
    assert {e.value for e in EventType} == {
        "created", "queued", "started", "stage_started", "stage_completed", "progress",
        "completed", "failed", "cancelled", "retry_scheduled", "recovered", "expired",
        "artifacts_evicted", "webhook_delivered", "webhook_failed", "webhook_gave_up",
    }  # fmt: skip
    assert JobStatus("pending") == "pending"


# -- ProcessingOptions -------------------------------------------------------------------


def test_options_defaults() -> None:
    options = ProcessingOptions()
    assert options.model_dump() == {
        "audio_format": "wav",
        "audio_quality": "medium",
        "language": None,
        "model_size": None,
        "clip_duration": 30.0,
        "overlap_duration": 2.0,
        "max_clips": 10,
        "sentiment_analysis": True,
        "topic_modeling": True,
        "keyword_extraction": True,
        "summary_sentences": None,
        "output_format": "mp4",
        "resolution": "source",
        "min_confidence": 0.5,
        "word_timestamps": True,
        "vad_filter": True,
        "transcription_preset": "accurate",
        "beam_size": 5,
        "temperature_fallback": True,
        "temperature": None,
        "task": "transcribe",
        "initial_prompt": None,
        "segments": None,
        "aspect_ratio": "source",
        "aspect_mode": "crop",
        "burn_captions": False,
        "fast_cut": True,
        "diarization": False,
        "num_speakers": None,
        "min_speakers": None,
        "max_speakers": None,
    }


def test_options_accept_the_seed_example() -> None:
    options = ProcessingOptions.model_validate(
        {
            "audio_format": "wav",
            "audio_quality": "high",
            "language": "en",
            "model_size": "base",
            "clip_duration": 30.0,
            "overlap_duration": 2.0,
            "max_clips": 10,
            "sentiment_analysis": True,
            "topic_modeling": True,
            "keyword_extraction": True,
            "output_format": "mp4",
            "resolution": "1080p",
            "min_confidence": 0.7,
        }
    )
    assert options.resolution == "1080p"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"audio_format": "ogg"}, "audio_format"),
        ({"audio_quality": "ultra"}, "audio_quality"),
        ({"output_format": "avi"}, "output_format"),
        ({"resolution": "4k"}, "resolution"),
        ({"clip_duration": 0.5}, "clip_duration"),
        ({"clip_duration": 601}, "clip_duration"),
        ({"overlap_duration": -1}, "overlap_duration"),
        ({"overlap_duration": 61, "clip_duration": 120}, "overlap_duration"),
        ({"max_clips": 0}, "max_clips"),
        ({"max_clips": 101}, "max_clips"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"language": "english"}, "language"),
        ({"language": "e"}, "language"),
        ({"language": "en_US"}, "language"),
        ({"model_size": "../../etc/passwd"}, "model_size"),
        ({"model_size": "/abs/model"}, "model_size"),
        ({"model_size": "org/../x"}, "model_size"),
        ({"model_size": "a" * 101}, "model_size"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_options_rejected(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProcessingOptions.model_validate(options)
    assert field in json.dumps(info.value.errors(include_url=False), default=str)


def test_overlap_must_be_shorter_than_clip() -> None:
    with pytest.raises(ValidationError) as info:
        ProcessingOptions(clip_duration=10, overlap_duration=10)
    message = str(info.value)
    assert "overlap_duration" in message and "clip_duration" in message
    assert ProcessingOptions(clip_duration=10, overlap_duration=9.5).overlap_duration == 9.5


@pytest.mark.parametrize(
    ("given", "stored"), [("en", "en"), ("ENG", "en"), ("pt-BR", "pt"), (" de ", "de")]
)
def test_language_codes_normalised(given: str, stored: str) -> None:
    assert ProcessingOptions(language=given).language == stored


@pytest.mark.parametrize("name", ["tiny.en", "base", "large-v3", "Systran/faster-whisper-small"])
def test_model_names_accepted(name: str) -> None:
    assert ProcessingOptions(model_size=name).model_size == name


# -- JobCreate ---------------------------------------------------------------------------


def test_job_create_defaults_and_stripping() -> None:
    job = JobCreate.model_validate(
        {"youtube_url": "  https://www.youtube.com/watch?v=dQw4w9WgXcQ \n", "job_type": "analysis"}
    )
    assert job.youtube_url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert job.job_type is JobType.analysis
    assert job.priority == 5
    assert job.options == ProcessingOptions()
    assert job.max_retries is None and job.idempotency_key is None


@pytest.mark.parametrize(
    "payload",
    [
        {"youtube_url": "   ", "job_type": "analysis"},
        {"youtube_url": "ftp://x/y", "job_type": "analysis"},
        {"youtube_url": "https://x/" + "a" * 2048, "job_type": "analysis"},
        {"youtube_url": "https://x", "job_type": "dance"},
        {"youtube_url": "https://x", "job_type": "analysis", "priority": 11},
        {"youtube_url": "https://x", "job_type": "analysis", "priority": -1},
        {"youtube_url": "https://x", "job_type": "analysis", "max_retries": 11},
        {"youtube_url": "https://x", "job_type": "analysis", "idempotency_key": ""},
        {"youtube_url": "https://x", "job_type": "analysis", "idempotency_key": "k" * 201},
        {"youtube_url": "https://x", "job_type": "analysis", "status": "completed"},
        {"youtube_url": "https://x", "job_type": "analysis", "options": {"max_clips": 0}},
        {"job_type": "analysis"},
    ],
)
def test_job_create_rejected(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobCreate.model_validate(payload)


def test_bulk_limits() -> None:
    one = {"youtube_url": "https://x", "job_type": "transcription"}
    assert len(BulkJobCreate.model_validate({"jobs": [one] * 100}).jobs) == 100
    with pytest.raises(ValidationError):
        BulkJobCreate.model_validate({"jobs": []})
    with pytest.raises(ValidationError):
        BulkJobCreate.model_validate({"jobs": [one] * 101})
    with pytest.raises(ValidationError):
        BulkJobIds.model_validate({"job_ids": []})
    with pytest.raises(ValidationError):
        BulkJobIds.model_validate({"job_ids": [str(uuid.uuid4()) for _ in range(501)]})
    item = BulkItemResult(index=0, ok=False, status_code=404, detail="Job not found")
    assert item.model_dump()["job"] is None


def test_list_query_validation() -> None:
    q = JobListQuery()
    assert (q.sort_by, q.order, q.limit, q.offset) == ("created_at", "desc", 20, 0)
    assert JobListQuery(created_after=datetime(2024, 1, 1)).created_after == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    for bad in (
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"min_priority": 11},
        {"sort_by": "youtube_url"},
        {"order": "up"},
        {"status_filter": "done"},
    ):
        with pytest.raises(ValidationError):
            JobListQuery.model_validate(bad)


# -- JobPublic ---------------------------------------------------------------------------

PUBLIC_JOB_FIELDS = {
    "id",
    "youtube_url",
    "job_type",
    "status",
    "priority",
    "progress",
    "current_stage",
    "status_message",
    "options",
    "video_title",
    "duration",
    "language",
    "language_probability",
    "transcript",
    "segments",
    "speakers",
    "analysis_results",
    "generated_clips",
    "error_message",
    "error_code",
    "retry_count",
    "max_retries",
    "idempotency_key",
    "webhook_url",
    "attempt",
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "updated_at",
    "stage_timings",
}


def test_job_public_has_every_field_with_nulls_and_z_datetimes() -> None:
    job = Job(
        youtube_url="https://x",
        job_type=JobType.full_processing,
        created_at=datetime(2024, 1, 1, 12, 0, 0),  # naive, as SQLite returns it
        updated_at=datetime(2024, 1, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    body = json.loads(JobPublic.model_validate(job).model_dump_json())
    assert set(body) == PUBLIC_JOB_FIELDS  # stage_outputs and last_event_seq stay inside
    assert body["created_at"] == "2024-01-01T12:00:00Z"
    assert body["updated_at"] == "2024-01-01T12:00:00Z"
    assert body["status"] == "pending" and body["job_type"] == "full_processing"
    for field in ("video_title", "transcript", "segments", "queued_at", "completed_at"):
        assert body[field] is None


def test_artifact_public_exposes_metadata_and_download_url() -> None:
    job_id = uuid.uuid4()
    artifact = Artifact(
        job_id=job_id,
        kind="audio",
        filename="audio.wav",
        storage_path=f"{job_id}/audio.wav",
        format="wav",
        content_type="audio/wav",
        size_bytes=10,
        meta={"sample_rate": 16000},
        created_at=datetime(2024, 1, 1, 12, 0, 0, 500000),
    )
    body = json.loads(ArtifactPublic.model_validate(artifact).model_dump_json())
    assert body["metadata"] == {"sample_rate": 16000}
    assert "storage_path" not in body and "meta" not in body
    assert body["download_url"] == f"/api/v1/jobs/{job_id}/artifacts/{artifact.id}/download"
    assert body["created_at"] == "2024-01-01T12:00:00.500000Z"


def test_job_event_public_serialises_type_and_utc_time() -> None:
    event = JobEvent(
        job_id=uuid.uuid4(),
        seq=3,
        type=EventType.stage_completed,
        stage="fetch",
        data={"size_bytes": 10},
        created_at=datetime(2024, 1, 1, 12, 0, 0),
    )
    body = json.loads(JobEventPublic.model_validate(event).model_dump_json())
    assert body["type"] == "stage_completed" and body["seq"] == 3
    assert body["created_at"] == "2024-01-01T12:00:00Z"


def test_clip_options_defaults_and_values() -> None:
    opts = ProcessingOptions()
    assert (opts.segments, opts.aspect_ratio, opts.aspect_mode, opts.burn_captions) == (
        None,
        "source",
        "crop",
        False,
    )
    opts = ProcessingOptions(
        segments=[{"start": 1, "end": 4.5, "title": "Intro"}, {"start": 10, "end": 12}],
        aspect_ratio="9:16",
        aspect_mode="blur",
        burn_captions=True,
    )
    assert opts.segments is not None and opts.segments[0].title == "Intro"
    assert opts.segments[1].end == 12.0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"segments": []}, "segments"),
        ({"segments": [{"start": 5, "end": 5}]}, "segments"),
        ({"segments": [{"start": -1, "end": 5}]}, "segments"),
        ({"segments": [{"start": 1, "end": 5, "colour": "red"}]}, "segments"),
        ({"segments": [{"start": 0, "end": 1}] * 101}, "segments"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"aspect_mode": "stretch"}, "aspect_mode"),
        ({"resolution": "4k"}, "resolution"),
        ({"output_format": "avi"}, "output_format"),
        ({"max_clips": 0}, "max_clips"),
    ],
)
def test_clip_options_rejected(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProcessingOptions(**options)
    assert field in str(info.value)


def test_segments_only_for_clip_jobs() -> None:
    body = {
        "youtube_url": "https://example.com/v",
        "options": {"segments": [{"start": 0, "end": 2}]},
    }
    JobCreate.model_validate({**body, "job_type": "clip_generation"})
    JobCreate.model_validate({**body, "job_type": "full_processing"})
    with pytest.raises(ValidationError, match=r"options\.segments applies only"):
        JobCreate.model_validate({**body, "job_type": "transcription"})
