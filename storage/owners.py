"""Whose jobs are whose (`Job.owner`): what the ingress needs to show an API key only its
own jobs where the coordinator answers for every job (bulk commands, the queue)."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from storage.models import Job, JobStatus


class JobOwners:
    """Owner lookups on the jobs table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def of(self, job_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The owner of each of these jobs that exists."""
        if not job_ids:
            return {}
        stmt = select(Job.id, Job.owner).where(col(Job.id).in_(list(job_ids)))
        with Session(self._engine) as session:
            return {job_id: owner for job_id, owner in session.exec(stmt).all()}

    def waiting(self, owner: str) -> list[uuid.UUID]:
        """`owner`'s jobs not started yet (pending or queued), in queue order."""
        stmt = (
            select(Job.id)
            .where(
                col(Job.owner) == owner,
                col(Job.status).in_([JobStatus.pending, JobStatus.queued]),
            )
            .order_by(col(Job.priority).desc(), col(Job.queued_at).asc(), col(Job.id).asc())
        )
        with Session(self._engine) as session:
            return list(session.exec(stmt).all())

    def queued_by_priority(self, owner: str) -> dict[int, int]:
        """How many of `owner`'s jobs are queued, by priority."""
        stmt = (
            select(Job.priority, func.count())
            .where(col(Job.owner) == owner, col(Job.status) == JobStatus.queued)
            .group_by(col(Job.priority))
        )
        with Session(self._engine) as session:
            return {int(p): int(n) for p, n in session.exec(stmt).all()}
