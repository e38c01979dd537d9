"""Submissions written as the coordinator takes them: a batch of new jobs, each already
queued, in one transaction.

A job submitted to the coordinator is stored with both of its first events, `created` (1)
and `queued` (2), so a submission costs one transaction instead of two; and the
submissions that arrive while one batch is being written share the next transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from storage.models import (
    ADMIN_OWNER,
    TERMINAL_STATUSES,
    EventType,
    Job,
    JobEvent,
    JobStatus,
    as_utc,
)
from storage.schemas import JobCreate


@dataclass(frozen=True)
class Submitted:
    """One submission's outcome: the job, whether it is new, and (if new) the events
    written with it, oldest first."""

    job: Job
    created: bool
    events: tuple[JobEvent, ...] = ()


def new_job_row(
    data: JobCreate,
    status: JobStatus,
    last_event_seq: int,
    default_max_retries: int,
    now: datetime,
    owner: str = ADMIN_OWNER,
) -> Job:
    """The row of a job just submitted, in `status`, with `last_event_seq` events to follow."""
    return Job(
        owner=owner,
        youtube_url=data.youtube_url,
        job_type=data.job_type,
        priority=data.priority,
        status=status,
        options=data.options.model_dump(mode="json"),
        max_retries=default_max_retries if data.max_retries is None else data.max_retries,
        idempotency_key=data.idempotency_key,
        webhook_url=data.webhook_url,
        last_event_seq=last_event_seq,
        created_at=now,
        updated_at=now,
        queued_at=now if status == JobStatus.queued else None,
    )


def _queued_job(data: JobCreate, owner: str, default_max_retries: int, now: datetime) -> Submitted:
    job = new_job_row(data, JobStatus.queued, 2, default_max_retries, now, owner)
    # Each event carries the status and progress it was written with (as `transition`'s do),
    # so the `created` event reads as pending though the row is already queued.
    created = JobEvent(
        job_id=job.id,
        seq=1,
        type=EventType.created,
        message="Job created",
        data={
            "status": JobStatus.pending.value,
            "progress": 0.0,
            "job_type": data.job_type.value,
            "priority": data.priority,
        },
        created_at=now,
    )
    queued = JobEvent(
        job_id=job.id,
        seq=2,
        type=EventType.queued,
        message=f"queued with priority {data.priority}",
        data={"status": JobStatus.queued.value, "progress": 0.0},
        created_at=now,
    )
    return Submitted(job, True, (created, queued))


@dataclass(frozen=True)
class Submission:
    """A job to store for `owner`, who may have at most `max_active` jobs waiting or
    processing at once (None: no limit)."""

    data: JobCreate
    owner: str = ADMIN_OWNER
    max_active: int | None = None


@dataclass(frozen=True)
class Refused:
    """A submission not stored: its owner already has `max_active` jobs active."""

    max_active: int


ACTIVE = [s for s in JobStatus if s not in TERMINAL_STATUSES]  # pending, queued, processing


def insert_queued_jobs(
    session: Session, batch: Sequence[Submission], default_max_retries: int, now: datetime
) -> list[Submitted | Refused]:
    """Store `batch` as queued jobs in one transaction; one outcome per item, in order.

    An idempotency key the same owner already stored, or repeated within the batch, gives
    the job first stored with it (`created=False`) and writes nothing for that item. A new
    job past its owner's `max_active` (counted in this transaction, the batch's own new
    jobs included) is `Refused`.
    """
    now = as_utc(now)
    by_key = _known_keys(session, batch)
    active = _active_counts(session, {s.owner for s in batch if s.max_active is not None})
    out: list[Submitted | Refused] = []
    new: list[Submitted] = []
    for s in batch:
        key = None if s.data.idempotency_key is None else (s.owner, s.data.idempotency_key)
        if key is not None and key in by_key:
            out.append(Submitted(by_key[key].job, False))
            continue
        if s.max_active is not None and active[s.owner] >= s.max_active:
            out.append(Refused(s.max_active))
            continue
        item = _queued_job(s.data, s.owner, default_max_retries, now)
        if key is not None:
            by_key[key] = item
        if s.owner in active:
            active[s.owner] += 1
        out.append(item)
        new.append(item)
    if new:
        # Core executemany, not the ORM's unit of work: a fraction of the CPU per row, and
        # the objects stay as built (the caller reads them, nothing reloads them).
        session.execute(sa.insert(Job), _rows([s.job for s in new]))  # jobs before events
        session.execute(sa.insert(JobEvent), _rows([ev for s in new for ev in s.events]))
    session.commit()
    return out


def _known_keys(session: Session, batch: Sequence[Submission]) -> dict[tuple[str, str], Submitted]:
    """The jobs already stored under the batch's idempotency keys, by (owner, key)."""
    keys = {s.data.idempotency_key for s in batch if s.data.idempotency_key is not None}
    if not keys:
        return {}
    stmt = select(Job).where(col(Job.idempotency_key).in_(sorted(keys)))
    return {(j.owner, str(j.idempotency_key)): Submitted(j, False) for j in session.exec(stmt)}


def _active_counts(session: Session, owners: set[str]) -> dict[str, int]:
    """How many jobs each owner has pending, queued or processing."""
    counts = dict.fromkeys(owners, 0)
    if owners:
        stmt = (
            select(Job.owner, func.count())
            .where(col(Job.owner).in_(sorted(owners)), col(Job.status).in_(ACTIVE))
            .group_by(col(Job.owner))
        )
        counts.update({owner: int(n) for owner, n in session.exec(stmt).all()})
    return counts


def _rows(objects: Sequence[Job] | Sequence[JobEvent]) -> list[dict[str, Any]]:
    """Each object's column values, by attribute name; an unset (None) integer primary key
    is left out so the database numbers the row."""
    if not objects:
        return []
    mapper = sa.inspect(type(objects[0]))
    keys = [
        attr.key
        for attr in mapper.column_attrs
        if not (attr.columns[0].primary_key and getattr(objects[0], attr.key) is None)
    ]
    return [{key: getattr(obj, key) for key in keys} for obj in objects]
