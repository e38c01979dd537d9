"""The retention sweep's queries (storage/retention.py), on SQLite and on a real PostgreSQL:
finished jobs only, oldest finish first (`completed_at`, else `updated_at`), within a limit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from storage.models import Artifact, EventType, Job, JobStatus
from storage.repository import JobRepository
from storage.retention import StoredArtifacts
from tests.unit.test_repository import T0, move, submit

S = JobStatus
DAY = timedelta(days=1)


def finished(repo: JobRepository, status: JobStatus, at_days: float, **fields: object) -> Job:
    """A job that ran and ended in `status` at T0 + `at_days` days."""
    at = T0 + at_days * DAY
    job = submit(repo, now=at)
    move(repo, job, S.queued, at)
    move(repo, job, S.processing, at)
    if status is S.processing:
        return job
    return move(repo, job, status, at, **{"completed_at": at, **fields})


def add_files(repo: JobRepository, job: Job, *sizes: int) -> None:
    for i, size in enumerate(sizes):
        repo.add_artifact(
            Artifact(
                job_id=job.id,
                kind=f"kind{i}",
                filename=f"f{i}.bin",
                storage_path=f"{job.id}/f{i}.bin",
                format="bin",
                content_type="application/octet-stream",
                size_bytes=size,
            )
        )


def test_expired_jobs_are_the_finished_ones_before_the_cutoff_oldest_first(
    repo: JobRepository,
) -> None:
    cancelled = finished(repo, S.cancelled, 2)
    completed = finished(repo, S.completed, 0)
    failed = finished(repo, S.failed, 1)
    finished(repo, S.completed, 5)  # finished after the cutoff
    finished(repo, S.processing, 0)  # running since long before it
    old_queued = submit(repo, now=T0)
    move(repo, old_queued, S.queued, T0)
    submit(repo, now=T0)  # pending
    cutoff = T0 + 3 * DAY
    assert repo.expired_jobs(cutoff, 10) == [completed.id, failed.id, cancelled.id]
    assert repo.expired_jobs(cutoff, 2) == [completed.id, failed.id]
    assert repo.expired_jobs(T0, 10) == []


def test_a_finished_job_without_completed_at_counts_from_updated_at(repo: JobRepository) -> None:
    job = finished(repo, S.failed, 0, completed_at=None)
    assert repo.expired_jobs(T0 + DAY, 10) == [job.id]
    assert repo.expired_jobs(T0 - DAY, 10) == []


def test_artifact_bytes_sum_every_job(repo: JobRepository) -> None:
    assert repo.artifact_bytes() == 0
    add_files(repo, finished(repo, S.completed, 0), 100, 23)
    add_files(repo, finished(repo, S.processing, 0), 4000)
    assert repo.artifact_bytes() == 4123


def test_eviction_candidates_are_finished_jobs_with_artifacts_oldest_first(
    repo: JobRepository,
) -> None:
    newer = finished(repo, S.completed, 3)
    add_files(repo, newer, 5)
    oldest = finished(repo, S.failed, 1)
    add_files(repo, oldest, 100, 20, 3)
    finished(repo, S.completed, 0)  # no artifacts: nothing to evict
    add_files(repo, finished(repo, S.processing, 0), 9999)
    assert repo.eviction_candidates(10) == [
        StoredArtifacts(job_id=oldest.id, files=3, size_bytes=123),
        StoredArtifacts(job_id=newer.id, files=1, size_bytes=5),
    ]
    assert [c.job_id for c in repo.eviction_candidates(1)] == [oldest.id]


def test_latest_event_of_a_type(repo: JobRepository) -> None:
    job = finished(repo, S.completed, 0)
    assert repo.latest_event(job.id, EventType.artifacts_evicted) is None
    for day in (1, 2):
        repo.transition(job.id, event=EventType.artifacts_evicted, now=T0 + day * DAY)
    event = repo.latest_event(job.id, EventType.artifacts_evicted)
    assert event is not None and event.created_at == T0 + 2 * DAY
    assert repo.latest_event(uuid.uuid4(), EventType.completed) is None
