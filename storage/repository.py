"""`JobRepository`: every read and write of jobs, events and artifact rows.

Each call opens a short session and returns detached objects (loaded, no lazy loading) so
callers never hold a session. Every state change goes through `transition`, which writes the
change and its numbered event in one transaction.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from storage.durations import summarize
from storage.models import (
    ADMIN_OWNER,
    Artifact,
    EventType,
    InvalidTransitionError,
    Job,
    JobEvent,
    JobStatus,
    JobType,
    WebhookDelivery,
    as_utc,
    can_transition,
)
from storage.retention import RetentionQueries
from storage.schemas import JobCreate, JobListQuery, StatisticsPublic
from storage.submissions import Refused, Submission, Submitted, insert_queued_jobs, new_job_row
from storage.webhooks import WebhookQueries, deliveries_for

# Fields `transition` may not touch: identity and the event counter it maintains itself.
_PROTECTED_FIELDS = frozenset({"id", "last_event_seq", "created_at"})
_JOB_FIELDS = frozenset(Job.model_fields)

# Status sorts in lifecycle order, not alphabetically.
_STATUS_ORDER = sa.case({s.value: i for i, s in enumerate(JobStatus)}, value=col(Job.status))

_SORT_COLUMNS: dict[str, Any] = {
    "created_at": col(Job.created_at),
    "updated_at": col(Job.updated_at),
    "priority": col(Job.priority),
    "progress": col(Job.progress),
    "status": _STATUS_ORDER,
    "completed_at": col(Job.completed_at),
}
_NULLABLE_SORTS = frozenset({"completed_at"})

# Statistics read at most this many recent rows for percentiles.
STATS_SAMPLE_LIMIT = 10_000


class JobRepository(RetentionQueries, WebhookQueries):
    """Jobs, their events and their artifact rows in one database (the retention sweep's
    queries in storage/retention.py, the webhook sender's in storage/webhooks.py)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    # -- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        data: JobCreate,
        *,
        default_max_retries: int,
        now: datetime,
        owner: str = ADMIN_OWNER,
    ) -> tuple[Job, bool]:
        """Store a new pending job and its `created` event; `(job, created)`.

        A known idempotency key returns the job first stored with it and `created=False`.
        """
        key = data.idempotency_key
        if key is not None and (existing := self.get_job_by_key(key, owner)) is not None:
            return existing, False
        now = as_utc(now)
        job = new_job_row(data, JobStatus.pending, 1, default_max_retries, now, owner)
        event = JobEvent(
            job_id=job.id,
            seq=1,
            type=EventType.created,
            message="Job created",
            data={"job_type": data.job_type.value, "priority": data.priority},
            created_at=now,
        )
        with self._session() as session:
            try:
                session.add(job)
                session.flush()  # the job row must precede its event (no ORM relationship)
                session.add(event)
                session.commit()
            except IntegrityError:
                session.rollback()
                # Lost a race with a concurrent submission of the same key.
                if key is not None and (existing := self.get_job_by_key(key, owner)) is not None:
                    return existing, False
                raise
        return job, True

    def create_queued_jobs(
        self, batch: Sequence[Submission], *, default_max_retries: int, now: datetime
    ) -> list[Submitted | Refused]:
        """Store `batch` as queued jobs with their created and queued events, in one
        transaction (`storage.submissions`)."""
        with self._session() as session:
            return insert_queued_jobs(session, batch, default_max_retries, now)

    def get_job(self, job_id: uuid.UUID) -> Job | None:
        with self._session() as session:
            return session.get(Job, job_id)

    def get_job_by_key(self, idempotency_key: str, owner: str = ADMIN_OWNER) -> Job | None:
        """The job `owner` stored with this idempotency key (keys are per owner)."""
        with self._session() as session:
            stmt = select(Job).where(Job.idempotency_key == idempotency_key, Job.owner == owner)
            return session.exec(stmt).first()

    def list_jobs(self, q: JobListQuery, owner: str | None = None) -> tuple[list[Job], int]:
        """One page of jobs matching `q` (and of `owner`, if given), and the total number
        matching (ignoring the page)."""
        conditions: list[Any] = _owned_by(owner)
        if q.status_filter is not None:
            conditions.append(col(Job.status) == q.status_filter)
        if q.job_type is not None:
            conditions.append(col(Job.job_type) == q.job_type)
        if q.min_priority is not None:
            conditions.append(col(Job.priority) >= q.min_priority)
        if q.created_after is not None:
            conditions.append(col(Job.created_at) >= q.created_after)
        if q.created_before is not None:
            conditions.append(col(Job.created_at) < q.created_before)

        sort_column = _SORT_COLUMNS[q.sort_by]
        descending = q.order == "desc"
        primary = sort_column.desc() if descending else sort_column.asc()
        if q.sort_by in _NULLABLE_SORTS:
            # SQLite and PostgreSQL disagree on where NULLs go; put them last on both.
            primary = primary.nulls_last()
        tiebreak = col(Job.id).desc() if descending else col(Job.id).asc()

        with self._session() as session:
            total = session.exec(select(func.count()).select_from(Job).where(*conditions)).one()
            stmt = (
                select(Job)
                .where(*conditions)
                .order_by(primary, tiebreak)
                .limit(q.limit)
                .offset(q.offset)
            )
            return list(session.exec(stmt).all()), total

    def jobs_with_status(self, statuses: Iterable[JobStatus]) -> list[Job]:
        """Jobs in any of `statuses`, in queue order: priority first, then oldest first."""
        wanted = [JobStatus(s) for s in statuses]
        if not wanted:
            return []
        stmt = (
            select(Job)
            .where(col(Job.status).in_(wanted))
            .order_by(
                col(Job.priority).desc(),
                col(Job.queued_at).asc().nulls_last(),
                col(Job.created_at).asc(),
                col(Job.id).asc(),
            )
        )
        with self._session() as session:
            return list(session.exec(stmt).all())

    def count_by_status(self, owner: str | None = None) -> dict[JobStatus, int]:
        """Number of jobs (of `owner`, if given) in each status; every status is present."""
        counts = dict.fromkeys(JobStatus, 0)
        stmt = select(Job.status, func.count()).where(*_owned_by(owner)).group_by(col(Job.status))
        with self._session() as session:
            for status, n in session.exec(stmt).all():
                counts[JobStatus(status)] = n
        return counts

    def transition(
        self,
        job_id: uuid.UUID,
        *,
        event: EventType,
        fields: Mapping[str, Any] | None = None,
        stage: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        now: datetime,
        expected_status: Collection[JobStatus] | None = None,
    ) -> tuple[Job, JobEvent] | None:
        """Apply `fields` to a job and append an `event`, in one transaction.

        Returns None, writing nothing, when the job does not exist or its status is not in
        `expected_status`: that is the guard against two runners acting on one job. A status
        change must be allowed by the state machine, else `InvalidTransitionError`.
        """
        changes = dict(fields or {})
        unknown = set(changes) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        protected = set(changes) & _PROTECTED_FIELDS
        if protected:
            raise ValueError(f"job fields not writable through transition: {sorted(protected)}")
        now = as_utc(now)

        with self._session() as session:
            # FOR UPDATE serialises concurrent writers on PostgreSQL; SQLite ignores it and
            # relies on its single writer.
            stmt = select(Job).where(Job.id == job_id).with_for_update()
            job = session.exec(stmt).first()
            if job is None:
                return None
            if expected_status is not None and job.status not in expected_status:
                return None
            if "status" in changes:
                target = JobStatus(changes["status"])
                if target != job.status and not can_transition(job.status, target):
                    raise InvalidTransitionError(job.status, target)
                changes["status"] = target
            for name, value in changes.items():
                setattr(job, name, value)
            job.updated_at = now
            job.last_event_seq += 1
            # Each event carries the job's status and progress as they were, so a replay of
            # the log reads exactly as the live updates did.
            snapshot = {"status": job.status.value, "progress": job.progress}
            job_event = JobEvent(
                job_id=job.id,
                seq=job.last_event_seq,
                type=event,
                stage=stage,
                message=message,
                data={**snapshot, **(data or {})},
                created_at=now,
            )
            session.add(job)
            session.add(job_event)
            session.add_all(deliveries_for(job, job_event))  # an ending's webhook, if any
            session.commit()
            return job, job_event

    def delete_job(self, job_id: uuid.UUID) -> bool:
        """Delete a job with its events and artifact rows; False if there was no such job."""
        with self._session() as session:
            # Explicit deletes keep this correct even on a connection without foreign keys on.
            session.execute(sa.delete(JobEvent).where(col(JobEvent.job_id) == job_id))
            session.execute(sa.delete(Artifact).where(col(Artifact.job_id) == job_id))
            session.execute(sa.delete(WebhookDelivery).where(col(WebhookDelivery.job_id) == job_id))
            result = session.execute(sa.delete(Job).where(col(Job.id) == job_id))
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- events ----------------------------------------------------------------------------

    def list_events(
        self, job_id: uuid.UUID, after_seq: int = 0, limit: int | None = None
    ) -> list[JobEvent]:
        """A job's events with `seq > after_seq`, oldest first."""
        stmt = (
            select(JobEvent)
            .where(JobEvent.job_id == job_id, col(JobEvent.seq) > after_seq)
            .order_by(col(JobEvent.seq).asc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._session() as session:
            return list(session.exec(stmt).all())

    # -- artifacts -------------------------------------------------------------------------

    def add_artifact(self, artifact: Artifact) -> Artifact:
        """Store an artifact row (the file is already in the artifact store)."""
        with self._session() as session:
            session.add(artifact)
            session.commit()
            return artifact

    def list_artifacts(self, job_id: uuid.UUID) -> list[Artifact]:
        stmt = (
            select(Artifact)
            .where(Artifact.job_id == job_id)
            .order_by(col(Artifact.created_at).asc(), col(Artifact.id).asc())
        )
        with self._session() as session:
            return list(session.exec(stmt).all())

    def get_artifact(self, job_id: uuid.UUID, artifact_id: uuid.UUID) -> Artifact | None:
        """The artifact, only if it belongs to `job_id`."""
        with self._session() as session:
            artifact = session.get(Artifact, artifact_id)
            return artifact if artifact is not None and artifact.job_id == job_id else None

    def delete_artifacts(
        self, job_id: uuid.UUID, kinds: Collection[str] | None = None
    ) -> list[Artifact]:
        """Delete a job's artifact rows (of `kinds`, or all); returns them so the caller can
        delete the files."""
        stmt = select(Artifact).where(Artifact.job_id == job_id)
        if kinds is not None:
            stmt = stmt.where(col(Artifact.kind).in_(list(kinds)))
        with self._session() as session:
            doomed = list(session.exec(stmt).all())
            for artifact in doomed:
                session.delete(artifact)
            session.commit()
            return doomed

    # -- statistics ------------------------------------------------------------------------

    def statistics(self, now: datetime, owner: str | None = None) -> StatisticsPublic:
        """Counts, success rate, durations per job type and stage, and throughput; of the
        jobs of `owner` if given."""
        now = as_utc(now)
        mine = _owned_by(owner)
        by_status = self.count_by_status(owner)
        by_type = dict.fromkeys(JobType, 0)
        with self._session() as session:
            for job_type, n in session.exec(
                select(Job.job_type, func.count()).where(*mine).group_by(col(Job.job_type))
            ).all():
                by_type[JobType(job_type)] = n
            completed_last_hour = session.exec(
                select(func.count())
                .select_from(Job)
                .where(
                    *mine,
                    col(Job.status) == JobStatus.completed,
                    col(Job.completed_at) >= now - timedelta(hours=1),
                )
            ).one()
            created_last_24h = session.exec(
                select(func.count())
                .select_from(Job)
                .where(*mine, col(Job.created_at) >= now - timedelta(hours=24))
            ).one()
            finished = session.exec(
                select(Job.job_type, Job.started_at, Job.completed_at)
                .where(
                    *mine,
                    col(Job.status) == JobStatus.completed,
                    col(Job.started_at).is_not(None),
                    col(Job.completed_at).is_not(None),
                )
                .order_by(col(Job.completed_at).desc())
                .limit(STATS_SAMPLE_LIMIT)
            ).all()
            timings = session.exec(
                select(Job.stage_timings)
                .where(*mine)
                .order_by(col(Job.updated_at).desc())
                .limit(STATS_SAMPLE_LIMIT)
            ).all()

        job_durations: dict[JobType, list[float]] = {t: [] for t in JobType}
        for job_type, started_at, completed_at in finished:
            assert started_at is not None and completed_at is not None
            seconds = (as_utc(completed_at) - as_utc(started_at)).total_seconds()
            job_durations[JobType(job_type)].append(max(seconds, 0.0))
        stage_samples: dict[str, list[float]] = defaultdict(list)
        for stage_timings in timings:
            for stage, seconds in (stage_timings or {}).items():
                if isinstance(seconds, int | float) and math.isfinite(seconds):
                    stage_samples[stage].append(float(seconds))

        completed = by_status[JobStatus.completed]
        finished_total = completed + by_status[JobStatus.failed]
        return StatisticsPublic(
            total_jobs=sum(by_status.values()),
            by_status=by_status,
            by_job_type=by_type,
            success_rate=completed / finished_total if finished_total else None,
            duration_by_job_type={t: summarize(v) for t, v in job_durations.items()},
            stage_durations={s: summarize(v) for s, v in sorted(stage_samples.items())},
            completed_last_hour=completed_last_hour,
            created_last_24h=created_last_24h,
            created_per_hour_24h=created_last_24h / 24.0,
            generated_at=now,
        )


def _owned_by(owner: str | None) -> list[Any]:
    """The condition "a job of `owner`", or none (every job) for None."""
    return [] if owner is None else [col(Job.owner) == owner]
