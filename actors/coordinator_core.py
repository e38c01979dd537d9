"""The coordinator's job API and queue as a plain asyncio class: the single writer of job state.

`JobCoordinator` (actors/job_coordinator.py) embeds it in a Ray actor; tests can drive it
with a fake stage runner and a fake clock. It takes the commands (submit, cancel, retry,
delete, clear the queue), keeps the queue and the worker slots, and hands each job it
dispatches to a `JobRunner` (actors/job_runner.py), which runs the job's stages and ends the
attempt. Rules it keeps:
- every state change is written to the database (one transaction: fields + event with the
  job's next sequence number) before it is published;
- at most `max_concurrent_jobs` jobs run; higher priority first, FIFO within a priority;
- a job waiting for a retry is held back until its `next_attempt_at`;
- on start it rebuilds the queue from the database (`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from actors.coordinator_config import CoordinatorConfig
from actors.errors import JobConflict, JobNotFound
from actors.job_queue import JobQueue
from actors.job_runner import JobRunner, RunningJob, StageRunner
from actors.messages import update_message
from pipeline.stages import chain_for
from storage.artifacts import ArtifactStore
from storage.models import EventType, Job, JobStatus
from storage.repository import JobRepository
from storage.schemas import JobCreate

TERMINAL = {JobStatus.completed, JobStatus.failed, JobStatus.cancelled}
INTERRUPT_GRACE_S = 2.0  # after the interrupt, before the worker is killed

Publisher = Callable[[str, int, dict[str, Any]], None]


class CoordinatorCore:
    def __init__(
        self,
        repo: JobRepository,
        store: ArtifactStore,
        config: CoordinatorConfig,
        run_stage: StageRunner,
        publish: Publisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.store = store
        self.config = config
        self._publish = publish
        self._now = now
        self.queue = JobQueue()
        self._runner = JobRunner(
            repo=repo,
            store=store,
            config=config,
            run_stage=run_stage,
            write=self._write,
            now=now,
            on_retry=self._hold_back,
            on_finished=self._release,
        )
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        self._free_slots = list(range(config.max_concurrent_jobs))
        self._slot_last_job: dict[int, tuple[str, float]] = {}
        self.queue_running = True

    @property
    def running(self) -> dict[str, RunningJob]:
        """The jobs in flight by id (held by the runner)."""
        return self._runner.running

    @property
    def dispatch_overhead_s(self) -> list[float]:
        """Recent delays from a slot's taking to its job's first stage_started write."""
        return self._runner.dispatch_overhead_s

    # ----------------------------------------------------------------- persistence
    def _write(
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
        """Persist a change and its event, then publish it. None if the guard refused."""
        written = self.repo.transition(
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
        self._publish(job_id, ev.seq, update_message(job_id, ev, job))
        return job

    def _get(self, job_id: str) -> Job:
        job = self.repo.get_job(UUID(job_id))
        if job is None:
            raise JobNotFound(f"Job {job_id} not found")
        return job

    def reconfigure(self, config: CoordinatorConfig) -> None:
        """Apply new settings from a redeploy; running jobs keep their slots."""
        self.config = config
        self._runner.config = config
        busy = {r.slot for r in self.running.values()}
        self._free_slots = [s for s in range(config.max_concurrent_jobs) if s not in busy]
        self._dispatch()

    # ----------------------------------------------------------------- recovery
    def recover(self) -> int:
        """Rebuild the queue from the database after a start or a restart."""
        count = 0
        jobs = self.repo.jobs_with_status(
            [JobStatus.pending, JobStatus.queued, JobStatus.processing]
        )
        for job in jobs:
            job_id = str(job.id)
            if job_id in self.running or job_id in self.queue:
                continue
            if job.status == JobStatus.processing:
                done = ", ".join(job.stage_outputs or {}) or "none"
                recovered = self._write(
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
                queued = self._write(
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
        loop = asyncio.get_running_loop()
        self._delayed[job_id] = loop.call_later(delay_s, self._release_delayed, job_id)

    def _release_delayed(self, job_id: str) -> None:
        self._delayed.pop(job_id, None)
        job = self.repo.get_job(UUID(job_id))
        if job is None or job.status != JobStatus.queued:
            return
        self.queue.push(job_id, job.priority, job.queued_at)
        self._dispatch()

    # ----------------------------------------------------------------- commands
    def submit(self, data: JobCreate) -> tuple[Job, bool]:
        job, created = self.repo.create_job(
            data, default_max_retries=self.config.default_max_retries, now=self._now()
        )
        if not created:
            return job, False
        job_id = str(job.id)
        # The `created` event was written with the job; publish it, then queue.
        events = self.repo.list_events(job.id)
        if events:
            self._publish(job_id, events[-1].seq, update_message(job_id, events[-1], job))
        queued = self._write(
            job_id,
            EventType.queued,
            {"status": JobStatus.queued, "queued_at": self._now()},
            message=f"queued with priority {job.priority}",
            expected={JobStatus.pending},
        )
        if queued is not None:
            job = queued
            self.queue.push(job_id, job.priority, job.queued_at)
            self._dispatch()
        return job, True

    async def cancel(self, job_id: str) -> Job:
        job = self._get(job_id)
        if job.status in TERMINAL:
            raise JobConflict(f"Job {job_id} is already {job.status.value} and cannot be cancelled")
        run = self.running.get(job_id)
        if run is None:
            self.queue.remove(job_id)
            timer = self._delayed.pop(job_id, None)
            if timer:
                timer.cancel()
            done = self._write(
                job_id,
                EventType.cancelled,
                {"status": JobStatus.cancelled, "completed_at": self._now(), "current_stage": None},
                message="cancelled before it started",
                expected={JobStatus.pending, JobStatus.queued},
            )
            if done is None:  # it started in the meantime
                return await self.cancel(job_id)
            return done
        # The stage task polls `should_stop` and stops itself, cleaning up; an interrupt and
        # then a kill follow only for a stage that does not stop within the grace period.
        run.cancel_requested = True
        task = run.task
        if task is not None:
            grace = self.config.cancel_grace_s
            for force, wait_s in ((False, grace), (True, INTERRUPT_GRACE_S), (None, 10.0)):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), wait_s)
                    break
                if force is not None and run.handle is not None:
                    run.handle.cancel(force)
        return self._get(job_id)

    def retry(self, job_id: str) -> Job:
        job = self._get(job_id)
        if job.status not in (JobStatus.failed, JobStatus.cancelled) or job_id in self.running:
            raise JobConflict(
                f"Job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried"
            )
        resumed = ", ".join(job.stage_outputs or {}) or "none"
        queued = self._write(
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

    def delete(self, job_id: str) -> None:
        job = self._get(job_id)
        if job.status not in TERMINAL or job_id in self.running:
            raise JobConflict(
                f"Job {job_id} is {job.status.value}; only completed, failed or cancelled "
                "jobs can be deleted"
            )
        self.repo.delete_job(job.id)
        self.store.delete_job(UUID(job_id))

    def clear_queue(self) -> int:
        ids = self.queue.clear() + list(self._delayed)
        for timer in self._delayed.values():
            timer.cancel()
        self._delayed.clear()
        for job in self.repo.jobs_with_status([JobStatus.pending]):
            ids.append(str(job.id))
        count = 0
        for job_id in dict.fromkeys(ids):
            written = self._write(
                job_id,
                EventType.cancelled,
                {"status": JobStatus.cancelled, "completed_at": self._now()},
                message="cancelled by queue clear",
                expected={JobStatus.pending, JobStatus.queued},
            )
            count += written is not None
        return count

    # ----------------------------------------------------------------- progress
    def should_stop(self, job_id: str, attempt: int) -> bool:
        """Whether a stage task of `attempt` should stop: cancelled, or no longer current."""
        return self._runner.should_stop(job_id, attempt)

    def report_progress(
        self, job_id: str, attempt: int, stage: str, fraction: float, message: str
    ) -> None:
        self._runner.report_progress(job_id, attempt, stage, fraction, message)

    # ----------------------------------------------------------------- dispatch
    def _dispatch(self) -> None:
        while self.queue_running and self._free_slots and len(self.queue):
            job_id = self.queue.pop()
            if job_id is None:
                break
            freed_at = time.monotonic()
            slot = self._free_slots.pop(0)
            job = self.repo.get_job(UUID(job_id))
            if job is None or job.status != JobStatus.queued:
                self._free_slots.insert(0, slot)
                continue
            attempt = job.attempt + 1
            started = self._write(
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
            if started is None:
                self._free_slots.insert(0, slot)
                continue
            chain = chain_for(started.job_type.value)
            run = RunningJob(
                job_id=job_id,
                slot=slot,
                attempt=attempt,
                chain=chain,
                done=set(started.stage_outputs or {}) & set(chain),
                started_at=time.monotonic(),
            )
            self._runner.start(run, started, freed_at)

    def _release(self, run: RunningJob) -> None:
        """Give an ended attempt's slot back (the runner has dropped it) and dispatch."""
        self._slot_last_job[run.slot] = (run.job_id, time.time())
        if run.slot < self.config.max_concurrent_jobs:  # the limit may have shrunk meanwhile
            self._free_slots.append(run.slot)
            self._free_slots.sort()
        self._dispatch()

    # ----------------------------------------------------------------- status
    def queue_status(self) -> dict[str, Any]:
        return {
            "queue_running": self.queue_running,
            "max_concurrent_jobs": self.config.max_concurrent_jobs,
            "queued": len(self.queue) + len(self._delayed),
            "queued_by_priority": {
                str(k): v for k, v in sorted(self.queue.by_priority().items(), reverse=True)
            },
            "queued_order": self.queue.ordered(),
            "waiting_for_retry": sorted(self._delayed),
            "running": [
                {"job_id": r.job_id, "stage": r.stage, "slot": r.slot, "attempt": r.attempt}
                for r in sorted(self.running.values(), key=lambda r: r.slot)
            ],
            "running_count": len(self.running),
            "available_slots": len(self._free_slots),
        }

    def workers(self) -> list[dict[str, Any]]:
        by_slot = {r.slot: r for r in self.running.values()}
        out = []
        for slot in range(self.config.max_concurrent_jobs):
            run = by_slot.get(slot)
            last = self._slot_last_job.get(slot)
            out.append(
                {
                    "id": f"slot-{slot}",
                    "kind": "job_slot",
                    "state": "busy" if run else "idle",
                    "current_job": run.job_id if run else None,
                    "current_stage": run.stage if run else None,
                    "last_heartbeat": datetime.fromtimestamp(
                        run.last_heartbeat if run else (last[1] if last else time.time()), UTC
                    )
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "last_job": last[0] if last else None,
                }
            )
        return out
