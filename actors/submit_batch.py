"""`SubmitBatcher`: the coordinator's submissions, written in batches off its event loop.

A submission waits while the batch before it is being written; all that arrive meanwhile
are written together, in one transaction (`JobRepository.create_queued_jobs`), in the order
they arrived. Under load that is one commit for many jobs; alone, a submission is written
at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from actors import metrics
from actors.db_thread import DbThread
from actors.errors import too_many_active
from storage.repository import JobRepository
from storage.submissions import Refused, Submission, Submitted

MAX_BATCH = 256  # jobs per transaction
log = logging.getLogger("vpa.coordinator")


class SubmitBatcher:
    """Writes submissions in arrival order, batched; `on_written` gets each written batch
    on the loop before any of its submitters resumes (so a submitter that has gone away
    leaves no job stored but not queued)."""

    def __init__(
        self,
        repo: JobRepository,
        db: DbThread,
        now: Callable[[], datetime],
        default_max_retries: Callable[[], int],
        on_written: Callable[[list[Submitted]], None],
    ) -> None:
        self._repo = repo
        self._db = db
        self._now = now
        self._default_max_retries = default_max_retries
        self._on_written = on_written
        self._waiting: list[tuple[Submission, asyncio.Future[Submitted]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, submission: Submission) -> Submitted:
        """Store a queued job (or find the job its owner stored with its idempotency key);
        `TooManyRequests` if its owner already has `max_active` jobs active."""
        fut: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        return await fut

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                written = await self._db.run(
                    self._repo.create_queued_jobs,
                    [data for data, _ in batch],
                    default_max_retries=self._default_max_retries(),
                    now=self._now(),
                )
                stored = [item for item in written if isinstance(item, Submitted)]
                self._on_written(stored)
                for new in stored:
                    if new.created:  # not a repeated idempotency key
                        metrics.job_counted("submitted", str(new.job.job_type))
            except Exception as exc:  # the database refused the batch: each submitter hears
                log.exception("writing %d submission(s) failed", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), item in zip(batch, written, strict=True):
                if fut.done():
                    continue
                if isinstance(item, Refused):
                    fut.set_exception(too_many_active(item.max_active))
                else:
                    fut.set_result(item)

    async def close(self) -> None:
        """Stop writing (what is being written is written); for a coordinator's shutdown."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
