"""An attempt in flight as both halves of the coordinator see it (`RunningJob`), and the
one way both write job state (`JobWriter`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from actors import metrics
from actors.clock import TimerHandle
from actors.db_outage import OutageRetry
from actors.db_thread import DbThread
from actors.messages import hub_message
from actors.stage_runner import StageHandle
from storage.models import EventType, Job, JobEvent, JobStatus
from storage.repository import JobRepository
from storage.webhooks import ENDING_EVENTS

Publisher = Callable[[str, int, dict[str, Any]], None]


class JobWriter:
    """The one way job state is written: the change and its numbered event in one
    transaction (the status guard refusing it returns None), in the database thread `db`,
    then the event published to live clients. With `until_up`, a write that finds the
    database unreachable is tried again by `retry` (actors/db_outage.py), and is never
    written twice: a try whose commit landed unanswered is found, not repeated."""

    def __init__(
        self,
        repo: JobRepository,
        db: DbThread,
        now: Callable[[], datetime],
        publish: Publisher,
        retry: OutageRetry,
    ) -> None:
        self.repo = repo
        self.db = db
        self._now = now
        self.publish = publish
        self.retry = retry
        # Called after a write that ended a job with a webhook_url (its delivery is written).
        self.on_webhook: Callable[[], None] | None = None

    async def __call__(
        self,
        job_id: str,
        event: EventType,
        fields: dict[str, Any] | None = None,
        *,
        stage: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        expected: set[JobStatus] | None = None,
        until_up: bool = False,
    ) -> Job | None:
        async def write() -> tuple[Job, JobEvent] | None:
            return await self.db.run(
                self.repo.transition,
                UUID(job_id),
                event=event,
                fields=fields or {},
                stage=stage,
                message=message,
                data=data,
                now=self._now(),
                expected_status=expected,
            )

        async def landed() -> tuple[Job, JobEvent] | None:
            return await self.db.run(_last_write, self.repo, UUID(job_id), (event, stage, message))

        if until_up:
            written = await self.retry(write, f"{event.value} of job {job_id}", landed)
        else:
            written = await write()
        if written is None:
            return None
        job, ev = written
        self.publish(job_id, ev.seq, hub_message(job_id, ev, job))
        if ev.type in ENDING_EVENTS:  # completed, failed, cancelled
            metrics.job_counted(str(ev.type), str(job.job_type))
        if self.on_webhook is not None and ev.type in ENDING_EVENTS and job.webhook_url:
            self.on_webhook()
        return job


def _last_write(
    repo: JobRepository, job_id: UUID, what: tuple[EventType, str | None, str | None]
) -> tuple[Job, JobEvent] | None:
    """The job and its newest event if that event is `what` (type, stage, message): a
    write that landed though its try failed. Run in the database thread, so no other write
    of the coordinator's comes between its two reads."""
    job = repo.get_job(job_id)
    if job is None:
        return None
    newest = repo.list_events(job_id, after_seq=job.last_event_seq - 1)
    if newest and (newest[-1].type, newest[-1].stage, newest[-1].message) == what:
        return job, newest[-1]
    return None


@dataclass
class RunningJob:
    """One dispatched attempt: its worker slot, its stages, the stage running now."""

    job_id: str
    slot: int
    attempt: int
    chain: tuple[str, ...]
    done: set[str]
    started_at: float  # on the runner's clock: the attempt's timeout counts from here
    last_heartbeat: datetime  # when the attempt started or last reported progress
    stage: str | None = None
    handle: StageHandle | None = None
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    last_persist: float | None = None
    pending_progress: tuple[float, str] | None = None
    flush_timer: TimerHandle | None = None
