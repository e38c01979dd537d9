"""The coordinator's behaviour as a plain asyncio class: the single writer of job state.

`JobCoordinator` (actors/job_coordinator.py) embeds it in a Ray actor; tests can drive it
with a fake stage runner and a fake clock. Rules it keeps:
- every state change is written to the database (one transaction: fields + event with the
  job's next sequence number) before it is published;
- at most `max_concurrent_jobs` jobs run; higher priority first, FIFO within a priority;
- a job runs its chain of stages from the first one without a checkpoint;
- a retryable failure is retried with exponential backoff up to the job's max_retries;
- on start it rebuilds the queue from the database (`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

from actors.errors import JobConflict, JobNotFound, classify_failure
from actors.job_queue import JobQueue
from actors.messages import update_message
from config.logging import bind_job, job_logger
from pipeline.errors import PipelineError, StageCancelled, StageTimeout
from pipeline.stages import StageInput, StageOutput, chain_for, overall_progress
from pipeline.types import FetchOptions
from storage.artifacts import LocalArtifactStore, content_type_for
from storage.models import Artifact, EventType, Job, JobStatus
from storage.repository import JobRepository
from storage.schemas import JobCreate

TERMINAL = {JobStatus.completed, JobStatus.failed, JobStatus.cancelled}
INTERRUPT_GRACE_S = 2.0  # after the interrupt, before the worker is killed


class StageHandle(Protocol):
    def result(self) -> Awaitable[StageOutput]: ...
    def cancel(self, force: bool) -> None: ...


StageRunner = Callable[[str, StageInput, int], StageHandle]
Publisher = Callable[[str, int, dict[str, Any]], None]


@dataclass(frozen=True)
class CoordinatorConfig:
    max_concurrent_jobs: int = 3
    job_timeout_s: float = 3600.0
    default_max_retries: int = 3
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    cancel_grace_s: float = 3.0
    progress_persist_interval_s: float = 0.5
    fetch_options: FetchOptions = field(default_factory=FetchOptions)


@dataclass
class _Running:
    job_id: str
    slot: int
    attempt: int
    chain: tuple[str, ...]
    done: set[str]
    started_at: float
    stage: str | None = None
    handle: StageHandle | None = None
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    last_heartbeat: float = field(default_factory=time.time)
    last_persist: float = 0.0
    pending_progress: tuple[float, str] | None = None
    flush_timer: asyncio.TimerHandle | None = None


def backoff_s(config: CoordinatorConfig, retry_number: int) -> float:
    """Delay before retry number `retry_number` (1-based): base * 2**(n-1), capped."""
    return min(
        config.retry_backoff_base_s * (2 ** max(retry_number - 1, 0)), config.retry_backoff_max_s
    )


class CoordinatorCore:
    def __init__(
        self,
        repo: JobRepository,
        store: LocalArtifactStore,
        config: CoordinatorConfig,
        run_stage: StageRunner,
        publish: Publisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.store = store
        self.config = config
        self._run_stage = run_stage
        self._publish = publish
        self._now = now
        self.queue = JobQueue()
        self.running: dict[str, _Running] = {}
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        self._free_slots = list(range(config.max_concurrent_jobs))
        self._slot_last_job: dict[int, tuple[str, float]] = {}
        self.queue_running = True
        self.dispatch_overhead_s: list[float] = []

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
                loop = asyncio.get_running_loop()
                self._delayed[job_id] = loop.call_later(delay, self._release_delayed, job_id)
                return
        self.queue.push(job_id, job.priority, job.queued_at)

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
        run = self.running.get(job_id)
        return run is None or run.attempt != attempt or run.cancel_requested

    def report_progress(
        self, job_id: str, attempt: int, stage: str, fraction: float, message: str
    ) -> None:
        run = self.running.get(job_id)
        if run is None or run.attempt != attempt or run.stage != stage or run.cancel_requested:
            return  # a late report from a stale attempt or a finished stage
        run.last_heartbeat = time.time()
        run.pending_progress = (fraction, message)
        wait = run.last_persist + self.config.progress_persist_interval_s - time.monotonic()
        if wait <= 0:
            self._flush_progress(run)
        elif run.flush_timer is None:
            run.flush_timer = asyncio.get_running_loop().call_later(wait, self._flush_progress, run)

    def _flush_progress(self, run: _Running) -> None:
        run.flush_timer = None
        if run.pending_progress is None or self.running.get(run.job_id) is not run:
            return
        fraction, message = run.pending_progress
        run.pending_progress = None
        run.last_persist = time.monotonic()
        progress = overall_progress(run.chain, run.done, run.stage, fraction)
        self._write(
            run.job_id,
            EventType.progress,
            {"progress": progress, "status_message": message},
            stage=run.stage,
            message=message,
            data={"stage_fraction": round(fraction, 4)},
            expected={JobStatus.processing},
        )

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
            run = _Running(
                job_id=job_id,
                slot=slot,
                attempt=attempt,
                chain=chain,
                done=set(started.stage_outputs or {}) & set(chain),
                started_at=time.monotonic(),
            )
            self.running[job_id] = run
            run.task = asyncio.get_running_loop().create_task(self._run(run, started, freed_at))

    def _release(self, run: _Running) -> None:
        if run.flush_timer is not None:
            run.flush_timer.cancel()
        self.running.pop(run.job_id, None)
        self._slot_last_job[run.slot] = (run.job_id, time.time())
        if run.slot < self.config.max_concurrent_jobs:  # the limit may have shrunk meanwhile
            self._free_slots.append(run.slot)
            self._free_slots.sort()
        self._dispatch()

    async def _run(self, run: _Running, job: Job, freed_at: float) -> None:
        bind_job(run.job_id)  # this asyncio task's log lines carry the job id
        log = job_logger(run.job_id)
        log.info("attempt %d started (stages: %s)", run.attempt, " -> ".join(run.chain))
        deadline = run.started_at + self.config.job_timeout_s
        first_stage = True
        try:
            checkpoints: dict[str, dict[str, Any]] = dict(job.stage_outputs or {})
            timings: dict[str, float] = dict(job.stage_timings or {})
            for stage in run.chain:
                if stage in run.done:
                    continue
                if run.cancel_requested:
                    raise StageCancelled("the job was cancelled")
                run.stage = stage
                self._write(
                    run.job_id,
                    EventType.stage_started,
                    {
                        "current_stage": stage,
                        "status_message": f"{stage} started",
                        "progress": overall_progress(run.chain, run.done, stage, 0.0),
                    },
                    stage=stage,
                    message=f"{stage} started",
                    expected={JobStatus.processing},
                )
                if first_stage:
                    self.dispatch_overhead_s.append(time.monotonic() - freed_at)
                    del self.dispatch_overhead_s[:-10_000]
                    first_stage = False
                stage_input = StageInput(
                    job_id=run.job_id,
                    url=job.youtube_url,
                    options=dict(job.options or {}),
                    work_dir=str(self.store.job_dir(UUID(run.job_id))),
                    checkpoints=checkpoints,
                    fetch_options=self.config.fetch_options,
                    job_type=str(job.job_type),
                )
                t0 = time.monotonic()
                run.handle = self._run_stage(stage, stage_input, run.attempt)
                remaining = deadline - time.monotonic()
                try:
                    output = await asyncio.wait_for(run.handle.result(), max(remaining, 0.001))
                except TimeoutError:
                    run.handle.cancel(True)
                    raise StageTimeout(
                        f"the job ran past JOB_TIMEOUT ({self.config.job_timeout_s:g} s) "
                        f"during the {stage} stage"
                    ) from None
                except asyncio.CancelledError:
                    run.handle.cancel(True)
                    raise
                except BaseException as exc:
                    if run.cancel_requested:
                        raise StageCancelled("the job was cancelled") from exc
                    raise classify_failure(exc) from exc
                finally:
                    run.handle = None
                if run.cancel_requested:
                    raise StageCancelled("the job was cancelled")
                elapsed = time.monotonic() - t0
                self._register_artifacts(run.job_id, stage, output)
                checkpoints[stage] = output.checkpoint
                timings[stage] = round(elapsed, 4)
                run.done.add(stage)
                self._write(
                    run.job_id,
                    EventType.stage_completed,
                    {
                        **output.job_fields,
                        "stage_outputs": dict(checkpoints),
                        "stage_timings": dict(timings),
                        "progress": overall_progress(run.chain, run.done, None, 0.0),
                        "status_message": f"{stage} completed",
                    },
                    stage=stage,
                    message=f"{stage} completed in {elapsed:.2f} s",
                    # which job fields now hold this stage's results, for clients to fetch
                    data={"elapsed_s": round(elapsed, 4), "results": sorted(output.job_fields)},
                    expected={JobStatus.processing},
                )
                log.info("stage %s completed in %.2f s", stage, elapsed)
            run.stage = None
            self._write(
                run.job_id,
                EventType.completed,
                {
                    "status": JobStatus.completed,
                    "progress": 100.0,
                    "current_stage": None,
                    "completed_at": self._now(),
                    "status_message": "completed",
                    "error_message": None,
                    "error_code": None,
                },
                message="completed",
                expected={JobStatus.processing},
            )
            log.info("completed")
        except StageCancelled:
            self._finish_cancelled(run)
            log.info("cancelled")
        except PipelineError as err:
            self._fail_or_retry(run, err, log)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the coordinator itself: fail the job, keep serving
            log.exception("internal error")
            self._fail_or_retry(run, classify_failure(exc), log)
        finally:
            self._release(run)

    def _finish_cancelled(self, run: _Running) -> None:
        self._write(
            run.job_id,
            EventType.cancelled,
            {
                "status": JobStatus.cancelled,
                "completed_at": self._now(),
                "status_message": "cancelled",
            },
            stage=run.stage,
            message=f"cancelled during {run.stage}" if run.stage else "cancelled",
            expected={JobStatus.processing},
        )

    def _fail_or_retry(self, run: _Running, err: PipelineError, log: Any) -> None:
        job = self.repo.get_job(UUID(run.job_id))
        if job is None:
            return
        if err.retryable and job.retry_count < job.max_retries:
            number = job.retry_count + 1
            delay = backoff_s(self.config, number)
            due = self._now() + timedelta(seconds=delay)
            log.warning(
                "stage %s failed (%s); retry %d in %.1f s", run.stage, err.code, number, delay
            )
            written = self._write(
                run.job_id,
                EventType.retry_scheduled,
                {
                    "status": JobStatus.queued,
                    "retry_count": number,
                    "queued_at": self._now(),
                    "next_attempt_at": due,
                    "current_stage": None,
                    "error_message": err.message,
                    "error_code": err.code,
                    "status_message": f"retry {number} of {job.max_retries} in {delay:.1f} s",
                },
                stage=run.stage,
                message=f"{err.message} (retry {number} of {job.max_retries} in {delay:.1f} s)",
                data={"retry": number, "delay_s": delay, "error_code": err.code},
                expected={JobStatus.processing},
            )
            if written is not None:
                loop = asyncio.get_running_loop()
                self._delayed[run.job_id] = loop.call_later(
                    delay, self._release_delayed, run.job_id
                )
            return
        log.warning("failed in stage %s: %s (%s)", run.stage, err.message, err.code)
        self._write(
            run.job_id,
            EventType.failed,
            {
                "status": JobStatus.failed,
                "completed_at": self._now(),
                "error_message": err.message,
                "error_code": err.code,
                "status_message": "failed",
            },
            stage=run.stage,
            message=err.message,
            data={"error_code": err.code, "retryable": err.retryable},
            expected={JobStatus.processing},
        )

    def _register_artifacts(self, job_id: str, stage: str, output: StageOutput) -> None:
        kinds = {spec.kind for spec in output.artifacts}
        if kinds:
            self.repo.delete_artifacts(UUID(job_id), kinds=sorted(kinds))
        for spec in output.artifacts:
            path = Path(spec.path)
            self.repo.add_artifact(
                Artifact(
                    id=UUID(spec.id) if spec.id else uuid4(),
                    job_id=UUID(job_id),
                    kind=spec.kind,
                    filename=path.name,
                    storage_path=self.store.relative(path),
                    format=spec.format,
                    content_type=content_type_for(path.name),
                    size_bytes=path.stat().st_size,
                    duration_s=spec.duration_s,
                    meta={"stage": stage, **spec.metadata},
                )
            )

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
