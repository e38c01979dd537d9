"""The queries of the retention sweep (actors/job_removal.py), part of `JobRepository`.

Only finished jobs (`TERMINAL_STATUSES`) are ever returned, oldest finish first; a job's
finish time is its `completed_at`, or its `updated_at` where `completed_at` is empty.
Kept apart from storage/repository.py only to keep each module one size a reader takes in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from storage.models import TERMINAL_STATUSES, Artifact, EventType, Job, JobEvent, as_utc

_FINISHED = col(Job.status).in_(sorted(TERMINAL_STATUSES))
_FINISHED_AT: Any = func.coalesce(col(Job.completed_at), col(Job.updated_at))


@dataclass(frozen=True)
class StoredArtifacts:
    """A finished job's artifact rows, counted: how many files and bytes they name."""

    job_id: uuid.UUID
    files: int
    size_bytes: int


class RetentionQueries:
    """Mixed into `JobRepository`, which provides the sessions."""

    def _session(self) -> Session:
        raise NotImplementedError

    def expired_jobs(self, finished_before: datetime, limit: int) -> list[uuid.UUID]:
        """Up to `limit` finished jobs that finished before `finished_before`, oldest first."""
        cutoff = as_utc(finished_before)
        # Two indexed comparisons rather than one on the coalesce, which no index covers.
        older = sa.or_(
            col(Job.completed_at) < cutoff,
            sa.and_(col(Job.completed_at).is_(None), col(Job.updated_at) < cutoff),
        )
        stmt = (
            select(Job.id)
            .where(_FINISHED, older)
            .order_by(_FINISHED_AT.asc(), col(Job.id).asc())
            .limit(limit)
        )
        with self._session() as session:
            return list(session.exec(stmt).all())

    def artifact_bytes(self) -> int:
        """The sum of `size_bytes` over every artifact row, of every job."""
        stmt = select(func.coalesce(func.sum(col(Artifact.size_bytes)), 0))
        with self._session() as session:
            return int(session.exec(stmt).one())

    def eviction_candidates(self, limit: int) -> list[StoredArtifacts]:
        """Up to `limit` finished jobs that still have artifact rows, oldest finish first."""
        stmt = (
            select(Job.id, func.count(col(Artifact.id)), func.sum(col(Artifact.size_bytes)))
            .join(Artifact, col(Artifact.job_id) == col(Job.id))
            .where(_FINISHED)
            .group_by(col(Job.id), col(Job.completed_at), col(Job.updated_at))
            .order_by(_FINISHED_AT.asc(), col(Job.id).asc())
            .limit(limit)
        )
        with self._session() as session:
            return [
                StoredArtifacts(job_id=job_id, files=int(files), size_bytes=int(size or 0))
                for job_id, files, size in session.exec(stmt).all()
            ]

    def latest_event(self, job_id: uuid.UUID, event_type: EventType) -> JobEvent | None:
        """The job's newest event of `event_type`, if it has one (why its files are gone)."""
        stmt = (
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.type == event_type)
            .order_by(col(JobEvent.seq).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(stmt).first()
