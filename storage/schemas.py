"""API schemas: what clients send (`JobCreate`, `ProcessingOptions`, ...) and what they get
back (`JobPublic`, `JobsPublic`, ...). Tables live in `storage.models`.

Datetimes come back from SQLite naive; every public schema reads them as UTC and writes them
as ISO 8601 with a "Z" suffix ("2024-01-01T12:00:00Z").
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from storage.languages import normalise_language
from storage.models import EventType, JobBase, JobStatus, JobType, as_utc
from storage.sources import UPLOAD_SCHEME, upload_id
from storage.speaker_options import (
    DIARIZATION_DOC,
    MAX_SPEAKERS_DOC,
    MIN_SPEAKERS_DOC,
    NUM_SPEAKERS_DOC,
    SpeakerCount,
    check_speaker_counts,
)


def iso_z(value: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, as the seed's examples show."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


def utc_datetime(value: datetime) -> datetime:
    """`value` in UTC; one whose UTC time falls outside years 1-9999 is a validation error."""
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


UTCDatetime = Annotated[
    datetime,
    AfterValidator(utc_datetime),
    PlainSerializer(iso_z, return_type=str, when_used="json"),
]
"""A datetime read as UTC (naive means UTC) and written to JSON as ISO 8601 with "Z"."""

# Integers a client sends are bounded by what every database can bind and store (PostgreSQL's
# `integer`): a larger one is a 422 naming the field, never a 500 from the driver.
INT32_MAX = 2**31 - 1
# Clip ranges end within a week of media: finite, and far beyond any real video.
MAX_MEDIA_S = 7 * 24 * 3600.0


def storable_text(value: str) -> str:
    """Text every database stores and every JSON encoder writes: no NUL characters
    (PostgreSQL refuses them), no unpaired surrogates (not encodable as UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogates (not valid Unicode text)") from None
    return value


StorableStr = Annotated[str, AfterValidator(storable_text)]


# "tiny.en", "large-v3", or a hub-style "org/name"; never absolute, never "..".
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


CLIP_JOB_TYPES = frozenset({JobType.clip_generation, JobType.full_processing})


class ClipSegment(BaseModel):
    """A range of the video to cut as a clip exactly (snapped to frames)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: float = PydanticField(
        ge=0.0, le=MAX_MEDIA_S, description="Seconds from the start of the video"
    )
    end: float = PydanticField(gt=0.0, le=MAX_MEDIA_S, description="Seconds; after start")
    title: StorableStr | None = PydanticField(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _check_order(self) -> ClipSegment:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g}) must be after start ({self.start:g})")
        return self


# Beam size per transcription preset (bench/transcribe.py measures both; README "Transcription")
PRESET_BEAM_SIZES = {"accurate": 5, "fast": 1}


class ProcessingOptions(BaseModel):
    """Per-job processing options; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    audio_format: Literal["wav", "mp3", "flac"] = "wav"
    audio_quality: Literal["low", "medium", "high"] = "medium"
    language: str | None = PydanticField(
        default=None,
        max_length=35,
        description="ISO 639-1 or 639-2/3 code or BCP-47 tag of a language Whisper knows "
        '("en", "eng", "pt-BR"), stored as Whisper\'s code ("en", "en", "pt"); null lets the '
        "model detect it",
    )
    model_size: str | None = PydanticField(
        default=None,
        max_length=100,
        description='Whisper model name ("tiny.en", "base", "large-v3"); null uses the default',
    )
    clip_duration: float = PydanticField(default=30.0, ge=1.0, le=600.0)
    overlap_duration: float = PydanticField(default=2.0, ge=0.0, le=60.0)
    max_clips: int = PydanticField(default=10, ge=1, le=100)
    sentiment_analysis: bool = True
    topic_modeling: bool = True
    keyword_extraction: bool = True
    summary_sentences: int | None = PydanticField(
        default=None, ge=1, le=50, description="null: one per 150 words of transcript, 3-10"
    )
    output_format: Literal["mp4", "webm"] = "mp4"
    resolution: Literal["360p", "480p", "720p", "1080p", "source"] = "source"
    min_confidence: float = PydanticField(default=0.5, ge=0.0, le=1.0)
    # Transcription controls (beyond the seed)
    word_timestamps: bool = True
    vad_filter: bool = True
    transcription_preset: Literal["accurate", "fast"] = PydanticField(
        default="accurate",
        description="accurate: beam search of 5 (about 4% WER, 0.06x real time on 2 cores); "
        "fast: greedy decoding (beam 1; about 1.6x faster, about 3x the errors)",
    )
    beam_size: int | None = PydanticField(
        default=None, ge=1, le=10, description="null: the preset's (accurate 5, fast 1)"
    )
    temperature_fallback: bool = True
    temperature: float | None = PydanticField(default=None, ge=0.0, le=1.0)  # the first; null: 0
    task: Literal["transcribe", "translate"] = "transcribe"  # translate: to English text
    initial_prompt: StorableStr | None = PydanticField(default=None, max_length=2000)
    # Clip controls (beyond the seed)
    segments: list[ClipSegment] | None = PydanticField(
        default=None,
        min_length=1,
        max_length=100,
        description="Cut exactly these ranges instead of choosing highlights",
    )
    aspect_ratio: Literal["source", "16:9", "9:16", "1:1"] = PydanticField(
        default="source", description="Frame of the clips; 9:16 and 1:1 suit short-form apps"
    )
    aspect_mode: Literal["crop", "blur"] = PydanticField(
        default="crop",
        description="crop: a centre crop; blur: the whole frame on a blurred copy of itself",
    )
    burn_captions: bool = PydanticField(
        default=False, description="Draw each clip's subtitles into its picture"
    )
    fast_cut: bool = PydanticField(
        default=True,
        description="Copy the video between keyframes and re-encode only the ends (5x faster); "
        "false re-encodes whole clips, one set of H.264 parameters for strict players",
    )
    # Speaker diarization (beyond the seed): storage/speaker_options.py
    diarization: bool = PydanticField(default=False, description=DIARIZATION_DOC)
    num_speakers: SpeakerCount = PydanticField(default=None, description=NUM_SPEAKERS_DOC)
    min_speakers: SpeakerCount = PydanticField(default=None, description=MIN_SPEAKERS_DOC)
    max_speakers: SpeakerCount = PydanticField(default=None, description=MAX_SPEAKERS_DOC)

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        return None if value is None else normalise_language(value)

    @field_validator("model_size")
    @classmethod
    def _check_model_size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip()
        if not _MODEL_NAME_RE.fullmatch(name) or ".." in name:
            raise ValueError(
                'model_size must be a model name such as "base", "tiny.en" or "large-v3"'
            )
        return name

    @model_validator(mode="after")
    def _check_combinations(self) -> ProcessingOptions:
        if self.overlap_duration >= self.clip_duration:
            raise ValueError(
                f"overlap_duration ({self.overlap_duration:g}) must be less than "
                f"clip_duration ({self.clip_duration:g})"
            )
        counts = (self.num_speakers, self.min_speakers, self.max_speakers)
        check_speaker_counts(self.diarization, *counts)
        if self.beam_size is None:  # stored resolved: the job records the beam it used
            self.beam_size = PRESET_BEAM_SIZES[self.transcription_preset]
        return self


class JobCreate(JobBase):
    """A job submission."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[assignment]

    youtube_url: StorableStr = Field(min_length=1, max_length=2048)
    job_type: JobType
    priority: int = Field(default=5, ge=0, le=10)
    options: ProcessingOptions = Field(default_factory=ProcessingOptions)
    max_retries: int | None = Field(
        default=None, ge=0, le=10, description="null uses the server's MAX_RETRIES"
    )
    idempotency_key: StorableStr | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Resubmitting a key returns the job first created with it",
    )
    webhook_url: StorableStr | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="POSTed the job, signed (Standard Webhooks), when it completes, fails "
        "or is cancelled",
    )

    @model_validator(mode="after")
    def _check_clip_options(self) -> JobCreate:
        if self.options.segments is not None and self.job_type not in CLIP_JOB_TYPES:
            raise ValueError(
                "options.segments applies only to clip_generation and full_processing jobs, "
                f"not {self.job_type.value}"
            )
        return self

    @field_validator("youtube_url", "webhook_url", mode="before")
    @classmethod
    def _strip_url(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("youtube_url", "webhook_url")
    @classmethod
    def _check_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.field_name == "youtube_url" and value.lower().startswith(UPLOAD_SCHEME):
            if upload_id(value) is None:
                raise ValueError("an upload URL is upload://<the id POST /api/v1/uploads gave>")
            return value
        if not value.lower().startswith(("http://", "https://")):
            also = ", or upload://<id>" if info.field_name == "youtube_url" else ""
            raise ValueError(f"{info.field_name} must be an http:// or https:// URL{also}")
        return value


class JobPublic(JobBase):
    """A job as the API shows it: every field, null where not known yet."""

    id: uuid.UUID
    status: JobStatus
    progress: float
    current_stage: str | None = None
    status_message: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    video_title: str | None = None
    duration: float | None = Field(default=None, description="Media duration in seconds")
    transcript: str | None = None
    language: str | None = None
    language_probability: float | None = None
    segments: list[dict[str, Any]] | None = None
    speakers: list[dict[str, Any]] | None = None  # diarized jobs: talk time, turns per speaker
    analysis_results: dict[str, Any] | None = None
    generated_clips: list[dict[str, Any]] | None = None
    error_message: str | None = None
    error_code: str | None = None
    retry_count: int = 0
    max_retries: int = 0
    idempotency_key: str | None = None
    webhook_url: str | None = None
    attempt: int = 0
    stage_timings: dict[str, float] = Field(
        default_factory=dict, description="Seconds spent in each finished stage"
    )
    created_at: UTCDatetime
    queued_at: UTCDatetime | None = None
    started_at: UTCDatetime | None = None
    completed_at: UTCDatetime | None = None
    updated_at: UTCDatetime


class JobsPublic(SQLModel):
    """One page of jobs; `count` is the total matching the filters."""

    data: list[JobPublic]
    count: int
    limit: int
    offset: int


class JobEventPublic(SQLModel):
    """One entry of a job's history."""

    job_id: uuid.UUID
    seq: int
    type: EventType
    stage: str | None = None
    message: str | None = None
    data: dict[str, Any] | None = None
    created_at: UTCDatetime


class ArtifactPublic(BaseModel):
    """A file a job produced, with the URL to download it."""

    # A plain pydantic model: SQLModel classes reserve the attribute name `metadata`.
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    job_id: uuid.UUID
    kind: str
    filename: str
    format: str
    content_type: str
    size_bytes: int
    duration_s: float | None = None
    metadata: dict[str, Any] = PydanticField(
        default_factory=dict, validation_alias=AliasChoices("meta", "metadata")
    )
    created_at: UTCDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def download_url(self) -> str:
        return f"/api/v1/jobs/{self.job_id}/artifacts/{self.id}/download"


SortField = Literal["created_at", "updated_at", "priority", "progress", "status", "completed_at"]


class JobListQuery(BaseModel):
    """Filters, order and page of `GET /jobs/` (its query parameters)."""

    status_filter: JobStatus | None = None
    job_type: JobType | None = None
    min_priority: int | None = PydanticField(default=None, ge=0, le=10)
    created_after: UTCDatetime | None = None
    created_before: UTCDatetime | None = None
    sort_by: SortField = "created_at"
    order: Literal["asc", "desc"] = "desc"
    limit: int = PydanticField(default=20, ge=1, le=100)
    offset: int = PydanticField(default=0, ge=0, le=INT32_MAX)


class DurationStats(BaseModel):
    """Duration summary in seconds over `count` samples (null when there are none)."""

    count: int
    mean_s: float | None
    p95_s: float | None


class StatisticsPublic(BaseModel):
    """Counts, success rate, durations and throughput over all stored jobs."""

    total_jobs: int
    by_status: dict[JobStatus, int]
    by_job_type: dict[JobType, int]
    success_rate: float | None = PydanticField(
        description="completed / (completed + failed); null before any job finished"
    )
    duration_by_job_type: dict[JobType, DurationStats] = PydanticField(
        description="started_at to completed_at of completed jobs"
    )
    stage_durations: dict[str, DurationStats]
    completed_last_hour: int
    created_last_24h: int
    created_per_hour_24h: float
    generated_at: UTCDatetime
