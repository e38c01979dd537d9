"""An attempt in flight as both halves of the coordinator see it (`RunningJob`), and the
one way both write job state (`JobWriter`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from actors.clock import TimerHandle
from actors.db_thread import DbThread
from actors.messages import update_message
from actors.stage_runner import StageHandle
from storage.models import EventType, Job, JobStatus
from storage.repository import JobRepository

Publisher = Callable[[str, int, dict[str, Any]], None]


class JobWriter:
    """The one way job state is written: the change and its numbered event in one
    transaction (the status guard refusing it returns None), in the database thread `db`,
    then the event published to live clients."""

    def __init__(
        self, repo: JobRepository, db: DbThread, now: Callable[[], datetime], publish: Publisher
    ) -> None:
        self.repo = repo
        self.db = db
        self._now = now
        self.publish = publish

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
    ) -> Job | None:
        written = await self.db.run(
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
        if written is None:
            return None
        job, ev = written
        self.publish(job_id, ev.seq, update_message(job_id, ev, job))
        return job


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
