"""JobRepository and the engine factory, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import create_db_engine, init_db, is_sqlite, normalise_url
from storage.durations import percentile
from storage.models import (
    Artifact,
    EventType,
    InvalidTransitionError,
    Job,
    JobStatus,
    JobType,
)
from storage.repository import JobRepository
from storage.schemas import JobCreate, JobListQuery, JobPublic, ProcessingOptions

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
S = JobStatus


def submit(
    repo: JobRepository,
    *,
    now: datetime = T0,
    job_type: JobType = JobType.transcription,
    priority: int = 5,
    key: str | None = None,
    **extra: Any,
) -> Job:
    data = JobCreate(
        youtube_url="https://example.com/v.mp4",
        job_type=job_type,
        priority=priority,
        idempotency_key=key,
        **extra,
    )
    job, created = repo.create_job(data, default_max_retries=3, now=now)
    assert created
    return job


def move(repo: JobRepository, job: Job, status: JobStatus, now: datetime, **fields: Any) -> Job:
    event = {
        S.queued: EventType.queued,
        S.processing: EventType.started,
        S.completed: EventType.completed,
        S.failed: EventType.failed,
        S.cancelled: EventType.cancelled,
    }[status]
    result = repo.transition(job.id, event=event, fields={"status": status, **fields}, now=now)
    assert result is not None
    return result[0]


# -- engine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///./data/vpa.db", "sqlite:///./data/vpa.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'vpa.db'}")
    try:
        init_db(engine)
        init_db(engine)  # idempotent
        assert (tmp_path / "nested" / "dir" / "vpa.db").exists()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_postgres_engine(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        assert not is_sqlite(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "vpa"
    finally:
        engine.dispose()


def test_fresh_database_has_only_our_tables(db_engine: Engine) -> None:
    tables = set(sa.inspect(db_engine).get_table_names())
    assert tables == {
        "jobs",
        "job_events",
        "artifacts",
        "api_keys",
        "uploads",
        "webhook_deliveries",
        "alembic_version",
    }
    index_names = {ix["name"] for ix in sa.inspect(db_engine).get_indexes("jobs")}
    assert {
        "ix_jobs_status_priority_queued_at",
        "ix_jobs_job_type",
        "ix_jobs_priority",
        "ix_jobs_created_at",
        "ix_jobs_updated_at",
        "ix_jobs_completed_at",
    } <= index_names


# -- create / get ------------------------------------------------------------------------


def test_create_job_stores_pending_job_and_created_event(repo: JobRepository) -> None:
    job = submit(repo, options=ProcessingOptions(language="EN", max_clips=3), max_retries=1)
    stored = repo.get_job(job.id)
    assert stored is not None
    assert stored.status is S.pending
    assert stored.job_type is JobType.transcription
    assert stored.options["language"] == "en" and stored.options["max_clips"] == 3
    assert stored.max_retries == 1
    assert stored.created_at == T0 and stored.created_at.tzinfo is not None
    assert stored.updated_at == T0
    assert stored.last_event_seq == 1
    events = repo.list_events(job.id)
    assert [(e.seq, e.type) for e in events] == [(1, EventType.created)]
    assert events[0].created_at == T0


def test_default_max_retries_used_when_not_given(repo: JobRepository) -> None:
    data = JobCreate(youtube_url="https://x/v", job_type=JobType.analysis)
    job, _ = repo.create_job(data, default_max_retries=7, now=T0)
    assert job.max_retries == 7


def test_get_missing_job(repo: JobRepository) -> None:
    assert repo.get_job(uuid.uuid4()) is None
    assert repo.get_job_by_key("nope") is None


def test_job_public_from_database_uses_z_datetimes(repo: JobRepository) -> None:
    job = submit(repo, now=datetime(2024, 1, 1, 13, 0, tzinfo=UTC))
    stored = repo.get_job(job.id)
    body = json.loads(JobPublic.model_validate(stored).model_dump_json())
    assert body["created_at"] == "2024-01-01T13:00:00Z"
    assert body["segments"] is None and body["options"]["audio_format"] == "wav"


def test_idempotency_key_returns_existing_job(repo: JobRepository) -> None:
    first = submit(repo, key="abc")
    data = JobCreate(
        youtube_url="https://other/x", job_type=JobType.analysis, idempotency_key="abc"
    )
    again, created = repo.create_job(data, default_max_retries=3, now=T0 + timedelta(1))
    assert not created
    assert again.id == first.id and again.job_type is JobType.transcription
    assert repo.list_jobs(JobListQuery())[1] == 1
    assert repo.get_job_by_key("abc") is not None


def test_idempotency_race_rereads_the_winner(
    repo: JobRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = submit(repo, key="race")
    real_lookup = repo.get_job_by_key
    calls = []

    def lookup_misses_once(key: str, owner: str) -> Job | None:
        # The first lookup happens "before" the competing insert committed.
        calls.append(key)
        return None if len(calls) == 1 else real_lookup(key, owner)

    monkeypatch.setattr(repo, "get_job_by_key", lookup_misses_once)
    data = JobCreate(youtube_url="https://x/v", job_type=JobType.analysis, idempotency_key="race")
    job, created = repo.create_job(data, default_max_retries=3, now=T0)
    assert not created and job.id == winner.id
    assert len(calls) == 2
    assert repo.count_by_status()[S.pending] == 1


# -- transitions and events ----------------------------------------------------------------


def test_transition_writes_fields_and_numbered_events(repo: JobRepository) -> None:
    job = submit(repo)
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (1, 2, 3))
    result = repo.transition(
        job.id,
        event=EventType.queued,
        fields={"status": S.queued, "queued_at": t1},
        message="queued",
        now=t1,
        expected_status={S.pending},
    )
    assert result is not None
    queued, event = result
    assert (queued.status, queued.queued_at, queued.updated_at) == (S.queued, t1, t1)
    assert (event.seq, event.type, event.message) == (2, EventType.queued, "queued")

    result = repo.transition(
        job.id,
        event=EventType.started,
        fields={"status": "processing", "started_at": t2, "attempt": 1},
        now=t2,
        expected_status={S.queued},
    )
    assert result is not None and result[1].seq == 3
    result = repo.transition(
        job.id,
        event=EventType.progress,
        fields={"progress": 42.5, "current_stage": "transcribe", "status_message": "30 s"},
        stage="transcribe",
        data={"fraction": 0.425},
        now=t3,
    )
    assert result is not None
    job_now, progress = result
    assert job_now.status is S.processing and job_now.progress == 42.5
    assert (progress.seq, progress.stage) == (4, "transcribe")
    # every event carries a snapshot of the job's status and progress after the change
    assert progress.data == {"status": "processing", "progress": 42.5, "fraction": 0.425}

    stored = repo.get_job(job.id)
    assert stored is not None
    assert (stored.last_event_seq, stored.attempt, stored.updated_at) == (4, 1, t3)
    events = repo.list_events(job.id)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.type for e in events] == [
        EventType.created,
        EventType.queued,
        EventType.started,
        EventType.progress,
    ]
    assert [e.seq for e in repo.list_events(job.id, after_seq=2)] == [3, 4]
    assert [e.seq for e in repo.list_events(job.id, after_seq=1, limit=2)] == [2, 3]
    assert repo.list_events(job.id, after_seq=4) == []


def test_expected_status_guard_refuses_double_start(repo: JobRepository) -> None:
    job = submit(repo)
    move(repo, job, S.queued, T0)
    start = {"status": S.processing, "attempt": 1}
    first = repo.transition(
        job.id, event=EventType.started, fields=start, now=T0, expected_status={S.queued}
    )
    second = repo.transition(
        job.id, event=EventType.started, fields=start, now=T0, expected_status={S.queued}
    )
    assert first is not None and second is None
    stored = repo.get_job(job.id)
    assert stored is not None and stored.last_event_seq == 3
    assert len(repo.list_events(job.id)) == 3


def test_forbidden_transition_raises_and_writes_nothing(repo: JobRepository) -> None:
    job = submit(repo)
    with pytest.raises(InvalidTransitionError):
        repo.transition(job.id, event=EventType.completed, fields={"status": S.completed}, now=T0)
    stored = repo.get_job(job.id)
    assert stored is not None and stored.status is S.pending and stored.last_event_seq == 1
    assert len(repo.list_events(job.id)) == 1


def test_completed_job_cannot_be_requeued(repo: JobRepository) -> None:
    job = submit(repo)
    for status in (S.queued, S.processing, S.completed):
        move(repo, job, status, T0)
    with pytest.raises(InvalidTransitionError):
        move(repo, job, S.queued, T0)


def test_retry_cycle(repo: JobRepository) -> None:
    job = submit(repo)
    for status in (S.queued, S.processing, S.failed, S.queued, S.processing, S.queued):
        move(repo, job, status, T0)
    stored = repo.get_job(job.id)
    assert stored is not None and stored.status is S.queued and stored.last_event_seq == 7


def test_transition_rejects_unknown_and_protected_fields(repo: JobRepository) -> None:
    job = submit(repo)
    with pytest.raises(ValueError, match="unknown"):
        repo.transition(job.id, event=EventType.progress, fields={"progres": 1.0}, now=T0)
    with pytest.raises(ValueError, match="not writable"):
        repo.transition(job.id, event=EventType.progress, fields={"last_event_seq": 9}, now=T0)


def test_transition_on_missing_job(repo: JobRepository) -> None:
    assert repo.transition(uuid.uuid4(), event=EventType.progress, now=T0) is None


def test_results_and_checkpoints_round_trip(repo: JobRepository, db_engine: Engine) -> None:
    job = submit(repo, job_type=JobType.full_processing)
    segments = [{"start": 0.0, "end": 1.5, "text": "héllo"}]
    fields = {
        "segments": segments,
        "analysis_results": {"sentiment": "positive", "topics": ["a", "b"]},
        "generated_clips": [{"start": 0.0, "end": 30.0, "title": "Intro"}],
        "transcript": "héllo " * 1000,
        "video_title": "A title",
        "duration": 61.5,
        "stage_outputs": {"fetch": {"path": "x.mp4"}},
        "stage_timings": {"fetch": 1.25},
        "next_attempt_at": T0 + timedelta(minutes=5),
        "error_code": None,
    }
    repo.transition(job.id, event=EventType.stage_completed, fields=fields, stage="fetch", now=T0)
    stored = repo.get_job(job.id)
    assert stored is not None
    for name, value in fields.items():
        assert getattr(stored, name) == value, name
    # JSON None is SQL NULL, so "IS NULL" finds jobs without results.
    other = submit(repo)
    with db_engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM jobs WHERE segments IS NULL")).scalars().all()
    assert [uuid.UUID(str(i)) for i in ids] == [other.id]


def test_event_sequence_is_unique_per_job(repo: JobRepository, db_engine: Engine) -> None:
    job = submit(repo)
    insert = sa.text(
        "INSERT INTO job_events (job_id, seq, type, created_at) VALUES (:j, 1, 'progress', :t)"
    )
    job_id = job.id.hex if is_sqlite(db_engine) else str(job.id)
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(insert, {"j": job_id, "t": T0.replace(tzinfo=None)})


# -- listing -------------------------------------------------------------------------------


@pytest.fixture
def populated(repo: JobRepository) -> list[Job]:
    """Six jobs an hour apart with distinct priorities, statuses and types."""
    specs = [
        (JobType.transcription, 1, S.pending),
        (JobType.analysis, 9, S.queued),
        (JobType.transcription, 5, S.processing),
        (JobType.clip_generation, 3, S.completed),
        (JobType.analysis, 7, S.failed),
        (JobType.transcription, 5, S.cancelled),
    ]
    paths = {
        S.pending: [],
        S.queued: [S.queued],
        S.processing: [S.queued, S.processing],
        S.completed: [S.queued, S.processing, S.completed],
        S.failed: [S.queued, S.processing, S.failed],
        S.cancelled: [S.cancelled],
    }
    jobs = []
    for i, (job_type, priority, status) in enumerate(specs):
        created = T0 + timedelta(hours=i)
        job = submit(repo, now=created, job_type=job_type, priority=priority)
        for step, target in enumerate(paths[status], start=1):
            fields: dict[str, Any] = {"progress": 10.0 * i}
            if target is S.completed:
                fields["completed_at"] = created + timedelta(minutes=30)
            job = move(repo, job, target, created + timedelta(minutes=step), **fields)
        jobs.append(job)
    return jobs


def ids(jobs: list[Job]) -> list[uuid.UUID]:
    return [j.id for j in jobs]


def test_list_default_is_newest_first(repo: JobRepository, populated: list[Job]) -> None:
    page, total = repo.list_jobs(JobListQuery())
    assert total == 6
    assert ids(page) == ids(populated[::-1])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status_filter": "failed"}, [4]),
        ({"job_type": "transcription"}, [5, 2, 0]),
        ({"min_priority": 6}, [4, 1]),
        ({"created_after": T0 + timedelta(hours=2)}, [5, 4, 3, 2]),
        ({"created_before": T0 + timedelta(hours=2)}, [1, 0]),
        (
            {
                "created_after": T0 + timedelta(hours=1),
                "created_before": T0 + timedelta(hours=5),
                "job_type": "transcription",
            },
            [2],
        ),
        ({"status_filter": "queued", "job_type": "transcription"}, []),
    ],
)
def test_list_filters(
    repo: JobRepository, populated: list[Job], query: dict[str, Any], expected: list[int]
) -> None:
    page, total = repo.list_jobs(JobListQuery.model_validate(query))
    assert ids(page) == [populated[i].id for i in expected]
    assert total == len(expected)


def test_list_filter_accepts_naive_and_offset_datetimes(
    repo: JobRepository, populated: list[Job]
) -> None:
    naive = JobListQuery(created_after=datetime(2024, 1, 1, 16, 0))
    assert repo.list_jobs(naive)[1] == 2
    offset = JobListQuery.model_validate({"created_after": "2024-01-01T18:00:00+02:00"})
    assert repo.list_jobs(offset)[1] == 2


def test_list_sorting(repo: JobRepository, populated: list[Job]) -> None:
    def order(sort_by: str, direction: str) -> list[int]:
        q = JobListQuery.model_validate({"sort_by": sort_by, "order": direction})
        index = {j.id: i for i, j in enumerate(populated)}
        return [index[j.id] for j in repo.list_jobs(q)[0]]

    assert order("created_at", "asc") == [0, 1, 2, 3, 4, 5]
    assert order("updated_at", "desc") == [5, 4, 3, 2, 1, 0]
    assert order("progress", "desc") == [5, 4, 3, 2, 1, 0]
    # Ties (priority 5 twice) break on id, in the same direction.
    p_desc = order("priority", "desc")
    tied = sorted([2, 5], key=lambda i: populated[i].id, reverse=True)
    assert p_desc == [1, 4, *tied, 3, 0]
    p_asc = order("priority", "asc")
    assert p_asc == [0, 3, *reversed(tied), 4, 1]
    # Status sorts in lifecycle order; jobs never completed sort last either way.
    assert order("status", "asc") == [0, 1, 2, 3, 4, 5]
    assert order("completed_at", "desc")[0] == 3
    assert order("completed_at", "asc")[0] == 3


def test_list_pagination(repo: JobRepository, populated: list[Job]) -> None:
    seen: list[uuid.UUID] = []
    for offset in (0, 4):
        page, total = repo.list_jobs(
            JobListQuery(sort_by="created_at", order="asc", limit=4, offset=offset)
        )
        assert total == 6
        seen += ids(page)
    assert seen == ids(populated)
    page, total = repo.list_jobs(JobListQuery(offset=100))
    assert page == [] and total == 6


def test_jobs_with_status_in_queue_order(repo: JobRepository) -> None:
    low = submit(repo, priority=1, now=T0)
    high_late = submit(repo, priority=8, now=T0 + timedelta(seconds=1))
    high_early = submit(repo, priority=8, now=T0 + timedelta(seconds=2))
    done = submit(repo, priority=10)
    move(
        repo, high_late, S.queued, T0 + timedelta(seconds=20), queued_at=T0 + timedelta(seconds=20)
    )
    move(
        repo, high_early, S.queued, T0 + timedelta(seconds=10), queued_at=T0 + timedelta(seconds=10)
    )
    move(repo, done, S.cancelled, T0)
    found = repo.jobs_with_status([S.pending, S.queued])
    assert ids(found) == [high_early.id, high_late.id, low.id]
    assert repo.jobs_with_status([]) == []


def test_count_by_status_lists_every_status(repo: JobRepository, populated: list[Job]) -> None:
    submit(repo)
    counts = repo.count_by_status()
    assert set(counts) == set(JobStatus)
    assert counts == {
        S.pending: 2,
        S.queued: 1,
        S.processing: 1,
        S.completed: 1,
        S.failed: 1,
        S.cancelled: 1,
    }


# -- statistics ----------------------------------------------------------------------------


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([1.0], 95) == 1.0
    assert percentile([float(v) for v in range(1, 21)], 95) == pytest.approx(19.05)
    assert percentile([10.0, 0.0], 50) == 5.0


def test_statistics_on_constructed_jobs(repo: JobRepository) -> None:
    now = T0 + timedelta(days=2)

    def finished(
        job_type: JobType, seconds: float, ended: datetime, timings: dict[str, float]
    ) -> None:
        job = submit(repo, job_type=job_type, now=ended - timedelta(hours=2))
        move(repo, job, S.queued, ended)
        move(repo, job, S.processing, ended, started_at=ended - timedelta(seconds=seconds))
        move(repo, job, S.completed, ended, completed_at=ended, stage_timings=timings)

    for n in range(1, 21):  # 20 transcriptions of 1..20 s, one ended 10 min ago
        ended = now - timedelta(minutes=10) if n == 20 else now - timedelta(hours=5)
        finished(JobType.transcription, float(n), ended, {"fetch": 1.0, "transcribe": float(n)})
    finished(JobType.analysis, 100.0, now - timedelta(minutes=30), {"analyze": 4.0})
    failed = submit(repo, job_type=JobType.analysis, now=now - timedelta(hours=1))
    for status in (S.queued, S.processing):
        move(repo, failed, status, now)
    move(repo, failed, S.failed, now, stage_timings={"fetch": 3.0})
    submit(repo, job_type=JobType.clip_generation, now=now - timedelta(days=1, hours=1))

    stats = repo.statistics(now)
    assert stats.total_jobs == 23
    assert stats.by_status[S.completed] == 21 and stats.by_status[S.failed] == 1
    assert stats.by_status[S.pending] == 1 and stats.by_status[S.queued] == 0
    assert stats.by_job_type == {
        JobType.audio_extraction: 0,
        JobType.transcription: 20,
        JobType.analysis: 2,
        JobType.clip_generation: 1,
        JobType.full_processing: 0,
    }
    assert stats.success_rate == pytest.approx(21 / 22)

    transcription = stats.duration_by_job_type[JobType.transcription]
    assert transcription.count == 20
    assert transcription.mean_s == pytest.approx(10.5)
    assert transcription.p95_s == pytest.approx(19.05)
    assert stats.duration_by_job_type[JobType.analysis].mean_s == pytest.approx(100.0)
    empty = stats.duration_by_job_type[JobType.audio_extraction]
    assert (empty.count, empty.mean_s, empty.p95_s) == (0, None, None)

    assert set(stats.stage_durations) == {"analyze", "fetch", "transcribe"}
    fetch = stats.stage_durations["fetch"]
    assert fetch.count == 21 and fetch.mean_s == pytest.approx((20 * 1.0 + 3.0) / 21)
    assert stats.stage_durations["transcribe"].p95_s == pytest.approx(19.05)

    assert stats.completed_last_hour == 2
    # Created within 24 h: the 20 transcriptions (7 h ago), the analysis, the failed job.
    assert stats.created_last_24h == 22
    assert stats.created_per_hour_24h == pytest.approx(22 / 24)
    body = json.loads(stats.model_dump_json())
    assert body["by_status"]["completed"] == 21
    assert body["generated_at"] == "2024-01-03T12:00:00Z"


def test_statistics_on_empty_database(repo: JobRepository) -> None:
    stats = repo.statistics(T0)
    assert stats.total_jobs == 0 and stats.success_rate is None
    assert set(stats.by_status) == set(JobStatus) and not any(stats.by_status.values())
    assert stats.stage_durations == {} and stats.created_per_hour_24h == 0.0


# -- artifacts and deletion ----------------------------------------------------------------


def make_artifact(job_id: uuid.UUID, kind: str, name: str, created: datetime = T0) -> Artifact:
    return Artifact(
        job_id=job_id,
        kind=kind,
        filename=name,
        storage_path=f"{job_id}/{name}",
        format=name.rsplit(".", 1)[-1],
        content_type="application/octet-stream",
        size_bytes=5_000_000_000,  # past 32 bits
        duration_s=12.5,
        meta={"index": 1},
        created_at=created,
    )


def test_artifacts_add_list_get_delete(repo: JobRepository) -> None:
    job = submit(repo)
    other = submit(repo)
    audio = repo.add_artifact(make_artifact(job.id, "audio", "audio.wav"))
    clip = repo.add_artifact(make_artifact(job.id, "clip", "clip_01.mp4", T0 + timedelta(1)))
    repo.add_artifact(make_artifact(other.id, "audio", "audio.wav"))

    listed = repo.list_artifacts(job.id)
    assert ids(listed) == [audio.id, clip.id]  # type: ignore[arg-type]
    assert listed[0].meta == {"index": 1} and listed[0].size_bytes == 5_000_000_000
    assert listed[0].created_at == T0
    got = repo.get_artifact(job.id, clip.id)
    assert got is not None and got.filename == "clip_01.mp4"
    assert repo.get_artifact(other.id, clip.id) is None  # belongs to another job
    assert repo.get_artifact(job.id, uuid.uuid4()) is None

    removed = repo.delete_artifacts(job.id, kinds=["clip"])
    assert [a.id for a in removed] == [clip.id]
    assert [a.id for a in repo.list_artifacts(job.id)] == [audio.id]
    assert len(repo.delete_artifacts(job.id)) == 1
    assert repo.list_artifacts(job.id) == []
    assert len(repo.list_artifacts(other.id)) == 1


def test_artifact_requires_existing_job(repo: JobRepository) -> None:
    with pytest.raises(IntegrityError):
        repo.add_artifact(make_artifact(uuid.uuid4(), "audio", "a.wav"))


def test_delete_job_removes_events_and_artifacts(repo: JobRepository) -> None:
    job = submit(repo)
    keep = submit(repo)
    move(repo, job, S.queued, T0)
    repo.add_artifact(make_artifact(job.id, "audio", "audio.wav"))
    assert repo.delete_job(job.id) is True
    assert repo.get_job(job.id) is None
    assert repo.list_events(job.id) == []
    assert repo.list_artifacts(job.id) == []
    assert repo.delete_job(job.id) is False
    assert repo.get_job(keep.id) is not None and len(repo.list_events(keep.id)) == 1


def test_foreign_keys_cascade_in_the_database(repo: JobRepository, db_engine: Engine) -> None:
    job = submit(repo)
    repo.add_artifact(make_artifact(job.id, "audio", "audio.wav"))
    job_id = job.id.hex if is_sqlite(db_engine) else str(job.id)
    with db_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs WHERE id = :id"), {"id": job_id})
    with db_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM job_events")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM artifacts")).scalar() == 0
