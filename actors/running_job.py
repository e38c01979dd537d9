"""An attempt in flight as both halves of the coordinator see it (`RunningJob`), and the
one way both write job state (`JobWriter`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from actors.clock import TimerHandle
from actors.stage_runner import StageHandle
from storage.models import EventType, Job, JobStatus


class JobWriter(Protocol):
    """`CoordinatorCore._write`: persist a change and its event, then publish it."""

    def __call__(
        self,
        job_id: str,
        event: EventType,
        fields: dict[str, Any] | None = None,
        *,
        stage: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        expected: set[JobStatus] | None = None,
    ) -> Job | None: ...


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
