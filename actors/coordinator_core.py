"""The coordinator's job API and queue as a plain asyncio class: the single writer of job state.

`JobCoordinator` (actors/job_coordinator.py) embeds it in a Ray actor; tests drive it with a
fake stage runner and clock. It takes the commands (submit, cancel, retry, delete, clear the
queue), keeps the queue and the worker slots, and hands each job it dispatches to a
`JobRunner` (actors/job_runner.py), which runs its stages and ends the attempt. Rules:
- every state change is written to the database (one transaction: fields + event with the
  job's next sequence number) before it is published;
- at most `max_concurrent_jobs` jobs run; higher priority first, FIFO within a priority;
- a job waiting for a retry is held back until its `next_attempt_at`;
- on start it rebuilds the queue from the database (`recover`), and again once the database
  is back after an outage (actors/db_outage.py); commands meanwhile fail (HTTP 503);
- every database call runs in one thread (`DbThread`), in order, never on the event loop;
  submissions are written in batches (`SubmitBatcher`): job + created + queued events each;
- `JobRemoval` deletes and sweeps (actors/job_removal.py), `WebhookSender` sends webhooks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from actors.clock import Clock, LoopTimer, Timer, TimerHandle
from actors.coordinator_config import CoordinatorConfig
from actors.db_outage import OutageRetry, OutageWatch
from actors.db_thread import DbThread
from actors.errors import JobConflict, JobNotFound
from actors.job_queue import JobQueue, queue_report
from actors.job_removal import JobRemoval
from actors.job_runner import JobRunner
from actors.messages import hub_message
from actors.running_job import JobWriter, Publisher, RunningJob
from actors.stage_runner import StageRunner
from actors.submit_batch import SubmitBatcher
from actors.webhooks import WebhookSender
from actors.worker_slots import WorkerSlots
from pipeline.stages import chain_for
from storage.artifacts import ArtifactStore
from storage.models import ADMIN_OWNER, TERMINAL_STATUSES, EventType, Job, JobStatus
from storage.repository import JobRepository
from storage.schemas import JobCreate
from storage.submissions import Submission, Submitted

log = logging.getLogger("vpa.coordinator")


class CoordinatorCore:
    def __init__(
        self,
        repo: JobRepository,
        store: ArtifactStore,
        config: CoordinatorConfig,
        stages: StageRunner,
        publish: Publisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Clock = time.monotonic,
        timer: Timer | None = None,
    ) -> None:
        """`now` stamps writes; `clock` and `timer` time backoffs, timeouts, grace periods."""
        self.repo = repo
        self.store = store
        self.config = config
        self._publish = publish
        self.db = DbThread()
        self._now = now
        self._clock = clock
        self._timer = timer or LoopTimer()
        retry = OutageRetry(self._timer, clock, lambda: self.config.db_outage_max_s)
        self._write = JobWriter(repo, self.db, now, publish, retry)
        self._submissions = SubmitBatcher(
            repo, self.db, now, lambda: self.config.default_max_retries, self._submitted
        )
        self._outage = OutageWatch(self.db.run, repo.count_by_status, self.recover, self._timer)
        self.queue = JobQueue()
        self._runner = JobRunner(
            repo=repo,
            store=store,
            config=config,
            stages=stages,
            write=self._write,
            now=now,
            on_retry=self._hold_back,
            on_finished=self._release,
            clock=clock,
            timer=self._timer,
            on_db_down=self._outage.down,
        )
        self._delayed: dict[str, TimerHandle] = {}
        self._slots = WorkerSlots(config.max_concurrent_jobs)
        self.queue_running = True
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.removal = JobRemoval(self, self._write, now, self._timer)
        self.webhooks = WebhookSender(self, self._write, now, self._timer)

    @property
    def running(self) -> dict[str, RunningJob]:
        """The jobs in flight by id (held by the runner)."""
        return self._runner.running

    @property
    def dispatch_overhead_s(self) -> list[float]:
        """Recent delays from a slot's taking to its job's first stage_started write."""
        return self._runner.dispatch_overhead_s

    def saw_outage(self, exc: BaseException) -> bool:
        """True if `exc` is an unreachable database; the queue is then rebuilt once it is back."""
        return self._outage.saw(exc)

    def _spawn_requeue(self, job_id: str) -> None:
        """`_requeue` in a task the core holds until it ends (a timer's callback)."""
        task = asyncio.get_running_loop().create_task(self._requeue(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """Start nothing more and stop the core's own tasks (not the running attempts)."""
        self.queue_running = False
        await self._submissions.close()
        await self._outage.close()
        await asyncio.gather(self.removal.close(), self.webhooks.close())
        tasks = [t for t in (self._dispatcher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.db.close()

    async def _get(self, job_id: str) -> Job:
        job = await self.db.run(self.repo.get_job, UUID(job_id))
        if job is None:
            raise JobNotFound(f"Job {job_id} not found")
        return job

    def reconfigure(self, config: CoordinatorConfig) -> None:
        """Apply new settings from a redeploy; running jobs keep their slots."""
        self.config = config
        self._runner.config = config
        self._slots.resize(config.max_concurrent_jobs, (r.slot for r in self.running.values()))
        self.removal.reconfigured()
        self._dispatch()

    # ----------------------------------------------------------------- recovery
    async def recover(self) -> int:
        """Rebuild the queue from the database after a start, a restart or an outage."""
        count = 0
        jobs = await self.db.run(
            self.repo.jobs_with_status, [JobStatus.pending, JobStatus.queued, JobStatus.processing]
        )
        for job in jobs:
            job_id = str(job.id)
            if job_id in self.running or job_id in self.queue or job_id in self._delayed:
                continue
            if job.status == JobStatus.processing:
                done = ", ".join(job.stage_outputs or {}) or "none"
                recovered = await self._write(
                    job_id,
                    EventType.recovered,
                    {"status": JobStatus.queued, "current_stage": None},
                    message=f"coordinator restarted; resuming after completed stages: {done}",
                    expected={JobStatus.processing},
                )
                if recovered is None:
                    continue
                job = recovered
            elif job.status == JobStatus.pending:
                queued = await self._write(
                    job_id,
                    EventType.queued,
                    {"status": JobStatus.queued, "queued_at": self._now()},
                    message="queued",
                    expected={JobStatus.pending},
                )
                if queued is None:
                    continue
                job = queued
            self._enqueue(job)
            count += 1
        self._dispatch()
        return count

    def _enqueue(self, job: Job) -> None:
        job_id = str(job.id)
        due = job.next_attempt_at
        if due is not None:
            if due.tzinfo is None:
                due = due.replace(tzinfo=UTC)
            delay = (due - self._now()).total_seconds()
            if delay > 0:
                self._hold_back(job_id, delay)
                return
        self.queue.push(job_id, job.priority, job.queued_at)

    def _hold_back(self, job_id: str, delay_s: float) -> None:
        """Keep a queued job out of the queue for `delay_s` (a retry's backoff)."""
        release = functools.partial(self._spawn_requeue, job_id)
        self._delayed[job_id] = self._timer.call_later(delay_s, release)

    async def _requeue(self, job_id: str) -> None:
        """Queue a job whose retry is due, if it still waits for it."""
        self._delayed.pop(job_id, None)
        try:
            job = await self.db.run(self.repo.get_job, UUID(job_id))
        except Exception as exc:
            if self._outage.saw(exc):  # still queued in the database: `recover` finds it
                return
            raise
        if job is None or job.status != JobStatus.queued:
            return
        self.queue.push(job_id, job.priority, job.queued_at)
        self._dispatch()

    # ----------------------------------------------------------------- commands
    async def submit(
        self, data: JobCreate, owner: str = ADMIN_OWNER, max_active: int | None = None
    ) -> tuple[Job, bool]:
        """`owner`'s new job, queued (or theirs with that idempotency key); 429 past max_active."""
        done = await self._submissions.submit(Submission(data, owner, max_active))
        return done.job, done.created

    def _submitted(self, batch: list[Submitted]) -> None:
        """Publish and queue a batch of new jobs as soon as it is written."""
        for item in batch:
            if not item.created:
                continue
            job_id = str(item.job.id)
            for event in item.events:
                self._publish(job_id, event.seq, hub_message(job_id, event, item.job))
            self.queue.push(job_id, item.job.priority, item.job.queued_at)
        self._dispatch()

    async def cancel(self, job_id: str) -> Job:
        job = await self._get(job_id)
        if job.status in TERMINAL_STATUSES:
            raise JobConflict(f"Job {job_id} is already {job.status.value} and cannot be cancelled")
        run = self.running.get(job_id)
        if run is None:
            self.queue.remove(job_id)
            if (timer := self._delayed.pop(job_id, None)) is not None:
                timer.cancel()
            done = await self._write(
                job_id,
                EventType.cancelled,
                {"status": JobStatus.cancelled, "completed_at": self._now(), "current_stage": None},
                message="cancelled before it started",
                expected={JobStatus.pending, JobStatus.queued},
            )
            if done is None:  # it started in the meantime
                return await self.cancel(job_id)
            return done
        # The stage stops itself (cleaning up); an interrupt, then a kill, if it does not.
        await self._runner.stop(run)
        return await self._get(job_id)

    async def retry(self, job_id: str) -> Job:
        job = await self._get(job_id)
        if job.status not in (JobStatus.failed, JobStatus.cancelled) or job_id in self.running:
            raise JobConflict(
                f"Job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried"
            )
        if job_id in self.removal.busy:
            raise JobConflict(f"Job {job_id}'s files are being deleted (retention); retry refused")
        resumed = ", ".join(job.stage_outputs or {}) or "none"
        queued = await self._write(
            job_id,
            EventType.queued,
            {
                "status": JobStatus.queued,
                "queued_at": self._now(),
                "next_attempt_at": None,
                "error_message": None,
                "error_code": None,
                "completed_at": None,
                "retry_count": 0,
            },
            message=f"manual retry; completed stages kept: {resumed}",
            data={"manual": True},
            expected={JobStatus.failed, JobStatus.cancelled},
        )
        if queued is None:
            raise JobConflict(f"Job {job_id} changed state; retry refused")
        self.queue.push(job_id, queued.priority, queued.queued_at)
        self._dispatch()
        return queued

    async def delete(self, job_id: str) -> None:
        await self.removal.delete(job_id)

    async def clear_queue(self) -> int:
        ids = self.queue.clear() + list(self._delayed)
        for timer in self._delayed.values():
            timer.cancel()
        self._delayed.clear()
        for job in await self.db.run(self.repo.jobs_with_status, [JobStatus.pending]):
            ids.append(str(job.id))
        count = 0
        for job_id in dict.fromkeys(ids):
            written = await self._write(
                job_id,
                EventType.cancelled,
                {"status": JobStatus.cancelled, "completed_at": self._now()},
                message="cancelled by queue clear",
                expected={JobStatus.pending, JobStatus.queued},
            )
            count += written is not None
        return count

    def should_stop(self, job_id: str, attempt: int) -> bool:
        """Whether a stage task of `attempt` should stop: cancelled, or no longer current."""
        return self._runner.should_stop(job_id, attempt)

    def report_progress(
        self, job_id: str, attempt: int, stage: str, fraction: float, message: str
    ) -> None:
        self._runner.report_progress(job_id, attempt, stage, fraction, message)

    # ----------------------------------------------------------------- dispatch
    def _dispatch(self) -> None:
        """Start queued jobs on free slots in one task (a running one sees new work itself)."""
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_all())

    async def _dispatch_all(self) -> None:
        while self.queue_running and len(self._slots) and len(self.queue):
            job_id = self.queue.pop()
            if job_id is None:
                break
            freed_at = self._clock()
            slot = self._slots.take()
            try:
                started = await self._start(job_id, slot)
            except Exception as exc:
                self._slots.untake(slot)
                if self._outage.saw(exc):  # the queue is rebuilt once the database is back
                    break
                log.exception(
                    "job %s could not be started; it stays queued in the database", job_id
                )
                continue
            if started is None:
                self._slots.untake(slot)
                continue
            chain = chain_for(started.job_type.value)
            run = RunningJob(
                job_id=job_id,
                slot=slot,
                attempt=started.attempt,
                chain=chain,
                done=set(started.stage_outputs or {}) & set(chain),
                started_at=self._clock(),
                last_heartbeat=self._now(),
            )
            self._runner.start(run, started, freed_at)

    async def _start(self, job_id: str, slot: int) -> Job | None:
        """Write a queued job's next attempt as started on `slot`; None if it is no longer
        queued (cancelled, deleted)."""
        job = await self.db.run(self.repo.get_job, UUID(job_id))
        if job is None or job.status != JobStatus.queued:
            return None
        attempt = job.attempt + 1
        return await self._write(
            job_id,
            EventType.started,
            {
                "status": JobStatus.processing,
                "attempt": attempt,
                "started_at": job.started_at or self._now(),
                "next_attempt_at": None,
                "status_message": "started",
            },
            message=f"attempt {attempt} started on worker slot {slot}",
            data={"attempt": attempt, "slot": slot},
            expected={JobStatus.queued},
        )

    def _release(self, run: RunningJob) -> None:
        """Give an ended attempt's slot back (the runner has dropped it) and dispatch."""
        self._slots.release(run.slot, run.job_id, self._now())
        self._dispatch()

    def queue_status(self) -> dict[str, Any]:
        """The queue's counts, its first jobs (`STATUS_IDS` per list), the running jobs."""
        return queue_report(
            self.queue,
            self._delayed,
            self.running.values(),
            free_slots=len(self._slots),
            limit=self.config.max_concurrent_jobs,
            queue_running=self.queue_running,
        )

    def workers(self) -> list[dict[str, Any]]:
        """Each worker slot: busy with which job and stage, or idle since when."""
        return self._slots.report(self.running.values(), self._now())
