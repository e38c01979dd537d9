"""Database tables and the job state machine.

Five tables: `Job` (one row per submitted job, holding its results), `JobEvent` (the
append-only history of each job, numbered per job), `Artifact` (files a job produced;
the bytes live in an artifact store, the rows hold metadata), `ApiKey` (the keys the
admin made, hashed) and `WebhookDelivery` (a job's finish announced to its `webhook_url`).
API schemas live in `storage.schemas`.

Datetimes are timezone-aware UTC everywhere. SQLite has no time zones, so the `UTCDateTime`
column type converts to UTC before writing and marks values read back as UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel

ADMIN_OWNER = "admin"  # `Job.owner` of the jobs the admin key made (or anyone, keys off)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken to be UTC already (what SQLite hands back)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always stores and returns aware UTC datetimes.

    PostgreSQL keeps the offset itself; SQLite stores wall-clock text, so values are converted
    to UTC on the way in (keeping text order equal to time order) and tagged UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def _enum_type(enum_cls: type[Enum]) -> sa.Enum:
    # Stored as the member *values* in a VARCHAR (no native PostgreSQL enum type), so adding a
    # member needs no migration and both databases hold the same strings the API shows.
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def _json(*, nullable: bool, name: str | None = None) -> Any:
    # none_as_null: Python None becomes SQL NULL, not the JSON literal 'null', so IS NULL works.
    json_type = sa.JSON(none_as_null=True)
    if name is None:
        return Column(json_type, nullable=nullable)
    return Column(name, json_type, nullable=nullable)


def _datetime_column(*, nullable: bool, index: bool = False) -> Any:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class JobStatus(StrEnum):
    """Where a job is in its life. Only the job coordinator changes it."""

    pending = "pending"
    """Accepted and stored; not yet handed to the queue."""
    queued = "queued"
    """Waiting in the coordinator's priority queue (first run, retry or recovery)."""
    processing = "processing"
    """A worker is running its stages."""
    completed = "completed"
    """Every stage finished; results and artifacts are stored. Final."""
    failed = "failed"
    """Gave up: a non-retryable error, or retries exhausted. A manual retry re-queues it."""
    cancelled = "cancelled"
    """Stopped on request. A manual retry re-queues it."""


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.completed, JobStatus.failed, JobStatus.cancelled}
)
"""Statuses in which no work is scheduled; the job stays put until someone acts on it."""

ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.pending: frozenset({JobStatus.queued, JobStatus.cancelled, JobStatus.failed}),
    JobStatus.queued: frozenset({JobStatus.processing, JobStatus.cancelled, JobStatus.failed}),
    # processing -> queued: a retry was scheduled, or the coordinator recovered the job after
    # a restart.
    JobStatus.processing: frozenset(
        {JobStatus.completed, JobStatus.failed, JobStatus.cancelled, JobStatus.queued}
    ),
    JobStatus.completed: frozenset(),
    # Manual retry.
    JobStatus.failed: frozenset({JobStatus.queued}),
    JobStatus.cancelled: frozenset({JobStatus.queued}),
}


def can_transition(current: JobStatus | str, target: JobStatus | str) -> bool:
    """Whether a job may move from `current` to `target` (a change of status, not a no-op)."""
    return JobStatus(target) in ALLOWED_TRANSITIONS[JobStatus(current)]


class InvalidTransitionError(ValueError):
    """A status change the state machine forbids."""

    def __init__(self, current: JobStatus | str, target: JobStatus | str) -> None:
        self.current = JobStatus(current)
        self.target = JobStatus(target)
        super().__init__(
            f"job status cannot change from {self.current.value} to {self.target.value}"
        )


class JobType(StrEnum):
    """What a job produces; each type is a fixed chain of pipeline stages."""

    audio_extraction = "audio_extraction"
    """fetch -> audio: an audio file."""
    transcription = "transcription"
    """... -> transcribe: a timestamped transcript."""
    analysis = "analysis"
    """... -> analyze: sentiment, topics, keywords."""
    clip_generation = "clip_generation"
    """... -> clips: video clips with metadata."""
    full_processing = "full_processing"
    """Every stage; every output kept."""


class EventType(StrEnum):
    """Kinds of entry in a job's event history."""

    created = "created"
    queued = "queued"
    started = "started"
    stage_started = "stage_started"
    stage_completed = "stage_completed"
    progress = "progress"
    retry_scheduled = "retry_scheduled"
    failed = "failed"
    completed = "completed"
    cancelled = "cancelled"
    recovered = "recovered"
    expired = "expired"
    """RETENTION_DAYS passed since the job finished: it is deleted right after this event."""
    artifacts_evicted = "artifacts_evicted"
    """ARTIFACT_MAX_BYTES: the job's artifacts were deleted, oldest finished jobs first."""
    webhook_delivered = "webhook_delivered"
    """The job's webhook_url answered a delivery with a 2xx."""
    webhook_failed = "webhook_failed"
    """A delivery attempt failed (non-2xx, timeout, connection error); another follows."""
    webhook_gave_up = "webhook_gave_up"
    """A delivery's last attempt failed (WEBHOOK_MAX_ATTEMPTS), or one that cannot succeed."""


class JobBase(SQLModel):
    """Fields a client chooses when it submits a job."""

    youtube_url: str = Field(max_length=2048)
    job_type: JobType = Field(sa_type=_enum_type(JobType), index=True)
    priority: int = Field(default=5, ge=0, le=10, index=True)


class Job(JobBase, table=True):
    """One submitted job: its state, its options and every result it produced."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The queue's recovery scan: status filter, then priority and age order.
        sa.Index("ix_jobs_status_priority_queued_at", "status", "priority", "queued_at"),
        # An idempotency key is one caller's: two API keys may use the same one. Also the
        # index of a caller's own jobs (its leading column).
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Whose job: the id of the API key that made it, or ADMIN_OWNER (the admin key, or
    # anyone while keys are off). Other keys never see it (deployments/auth.py).
    owner: str = Field(
        default=ADMIN_OWNER, max_length=40, sa_column_kwargs={"server_default": ADMIN_OWNER}
    )
    # Where the job's finish is announced (actors/webhooks.py); None: nowhere.
    webhook_url: str | None = Field(default=None, max_length=2048)
    # Indexed by the leading column of ix_jobs_status_priority_queued_at.
    status: JobStatus = Field(default=JobStatus.pending, sa_type=_enum_type(JobStatus))
    progress: float = Field(default=0.0, ge=0.0, le=100.0)
    current_stage: str | None = Field(default=None, max_length=64)
    status_message: str | None = Field(default=None, sa_type=sa.Text)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))

    # Results
    video_title: str | None = Field(default=None, sa_type=sa.Text)
    duration: float | None = Field(default=None, description="Media duration in seconds")
    transcript: str | None = Field(default=None, sa_type=sa.Text)
    language: str | None = Field(default=None, max_length=16, description="Spoken language")
    language_probability: float | None = None
    segments: list[dict[str, Any]] | None = Field(default=None, sa_column=_json(nullable=True))
    # Diarized jobs: per speaker {speaker, talk_time, turns, words} (pipeline.results.Speaker)
    speakers: list[dict[str, Any]] | None = Field(default=None, sa_column=_json(nullable=True))
    analysis_results: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    generated_clips: list[dict[str, Any]] | None = Field(
        default=None, sa_column=_json(nullable=True)
    )

    # Failure and retries
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    error_code: str | None = Field(default=None, max_length=64)
    retry_count: int = 0
    max_retries: int = 3
    idempotency_key: str | None = Field(default=None, max_length=200)
    attempt: int = Field(default=0, description="Incremented each time the job starts running")
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=_datetime_column(nullable=True)
    )

    # Internals: per-stage checkpoints (stage -> output dict), stage durations in seconds and
    # the per-job event sequence counter.
    stage_outputs: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    stage_timings: dict[str, float] = Field(default_factory=dict, sa_column=_json(nullable=False))
    last_event_seq: int = 0

    created_at: datetime = Field(
        default_factory=utcnow, sa_column=_datetime_column(nullable=False, index=True)
    )
    queued_at: datetime | None = Field(default=None, sa_column=_datetime_column(nullable=True))
    started_at: datetime | None = Field(default=None, sa_column=_datetime_column(nullable=True))
    completed_at: datetime | None = Field(
        default=None, sa_column=_datetime_column(nullable=True, index=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=_datetime_column(nullable=False, index=True)
    )


class JobEvent(SQLModel, table=True):
    """One entry in a job's history; `seq` numbers a job's events 1, 2, 3, ..."""

    __tablename__ = "job_events"
    __table_args__ = (sa.UniqueConstraint("job_id", "seq", name="uq_job_events_job_id_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    # Indexed by the leading column of uq_job_events_job_id_seq.
    job_id: uuid.UUID = Field(foreign_key="jobs.id", ondelete="CASCADE")
    seq: int
    type: EventType = Field(sa_type=_enum_type(EventType))
    stage: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, sa_type=sa.Text)
    data: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_datetime_column(nullable=False))


class Artifact(SQLModel, table=True):
    """A file a job produced. `storage_path` is relative to the artifact store's root."""

    __tablename__ = "artifacts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="jobs.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32, index=True)
    filename: str = Field(max_length=255)
    storage_path: str = Field(max_length=1024)
    format: str = Field(max_length=16)
    content_type: str = Field(max_length=128)
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    duration_s: float | None = None
    # `metadata` is reserved on declarative classes; the column keeps the natural name.
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=_json(nullable=False, name="metadata")
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_datetime_column(nullable=False))


class Upload(SQLModel, table=True):
    """A file a client uploaded (storage/uploads.py), for jobs to take as `upload://<id>`."""

    __tablename__ = "uploads"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner: str = Field(default=ADMIN_OWNER, max_length=40)  # as `Job.owner`
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    storage_path: str = Field(max_length=1024)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=_datetime_column(nullable=False, index=True)
    )


class ApiKey(SQLModel, table=True):
    """An API key the admin made (storage/api_keys.py): its SHA-256, never the key."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    key_prefix: str = Field(max_length=16)  # the key's first characters, to tell keys apart
    created_at: datetime = Field(default_factory=utcnow, sa_column=_datetime_column(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_datetime_column(nullable=True))
    # This key's own limits; None: RATE_LIMIT_PER_MINUTE / MAX_ACTIVE_JOBS_PER_KEY apply.
    rate_limit_per_minute: int | None = None
    max_active_jobs: int | None = None


class WebhookDelivery(SQLModel, table=True):
    """One terminal status of a job to announce to its `webhook_url`: written with that
    status (one transaction), then sent and retried by the coordinator (actors/webhooks.py)
    until delivered or given up. `id` is the `webhook-id` header, the same on every attempt;
    `body` the exact JSON sent, so each retry carries the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sender's scan: pending deliveries, earliest due first.
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    job_id: uuid.UUID = Field(foreign_key="jobs.id", ondelete="CASCADE", index=True)
    event_type: str = Field(max_length=32)  # "job.completed", "job.failed", "job.cancelled"
    url: str = Field(max_length=2048)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | gave_up
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_datetime_column(nullable=False))
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_datetime_column(nullable=False))
