"""Running one job: its stages in order, their progress reports, and how the attempt ends.

`JobRunner` is the half of the coordinator that owns the jobs in flight; `CoordinatorCore`
(actors/coordinator_core.py) keeps the queue, picks a job and a worker slot and hands them to
`start`. Rules it keeps:
- a job runs its chain of stages from the first one without a checkpoint; each stage is
  bracketed by stage_started and stage_completed writes, the latter with the new checkpoint;
- the whole attempt runs under the job's timeout (`job_timeout_s`);
- progress from a stage task is persisted at most every `progress_persist_interval_s`;
  reports from a stale attempt or a finished stage are dropped;
- a retryable failure is retried with exponential backoff up to the job's max_retries
  (`on_retry` holds it back for the delay); otherwise the job fails;
- however the attempt ends, the runner drops it and calls `on_finished` to free its slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Protocol
from uuid import UUID, uuid4

from actors.coordinator_config import CoordinatorConfig, backoff_s
from actors.errors import classify_failure
from config.logging import bind_job, job_logger
from pipeline.errors import PipelineError, StageCancelled, StageTimeout
from pipeline.options import stage_options
from pipeline.stages import StageInput, StageOutput, overall_progress
from storage.artifacts import ArtifactStore, content_type_for, job_prefix
from storage.models import Artifact, EventType, Job, JobStatus
from storage.repository import JobRepository


class StageHandle(Protocol):
    def result(self) -> Awaitable[StageOutput]: ...
    def cancel(self, force: bool) -> None: ...


StageRunner = Callable[[str, StageInput, int], StageHandle]


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


class JobRunner:
    """Runs dispatched attempts and holds them while they run (`running`).

    It calls back into the coordinator twice: `on_retry(job_id, delay_s)` once a retry has
    been written, to hold the job back for its backoff, and `on_finished(run)` once an ended
    attempt has been dropped, to give its slot back.
    """

    def __init__(
        self,
        repo: JobRepository,
        store: ArtifactStore,
        config: CoordinatorConfig,
        run_stage: StageRunner,
        write: JobWriter,
        now: Callable[[], datetime],
        on_retry: Callable[[str, float], None],
        on_finished: Callable[[RunningJob], None],
    ) -> None:
        self.repo = repo
        self.store = store
        self.config = config
        self._run_stage = run_stage
        self._write = write
        self._now = now
        self._on_retry = on_retry
        self._on_finished = on_finished
        self.running: dict[str, RunningJob] = {}
        self.dispatch_overhead_s: list[float] = []

    def start(self, run: RunningJob, job: Job, freed_at: float) -> None:
        """Run an attempt that has been written as started; `freed_at` is when its slot was
        taken (monotonic), for the dispatch overhead."""
        self.running[run.job_id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run, job, freed_at))

    def _finish(self, run: RunningJob) -> None:
        if run.flush_timer is not None:
            run.flush_timer.cancel()
        self.running.pop(run.job_id, None)
        self._on_finished(run)

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

    def _flush_progress(self, run: RunningJob) -> None:
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

    # ----------------------------------------------------------------- one attempt
    async def _run(self, run: RunningJob, job: Job, freed_at: float) -> None:
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
                    options=stage_options(job.options or {}),
                    work_dir="",  # the stage task's scratch directory, on its node
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
                await asyncio.to_thread(self.sweep, run.job_id)
                checkpoints[stage] = output.checkpoint
                timings[stage] = round(elapsed, 4)
                run.done.add(stage)
                note = output.checkpoint.get("note")  # e.g. why a stage produced nothing
                self._write(
                    run.job_id,
                    EventType.stage_completed,
                    {
                        **output.job_fields,
                        "stage_outputs": dict(checkpoints),
                        "stage_timings": dict(timings),
                        "progress": overall_progress(run.chain, run.done, None, 0.0),
                        "status_message": note or f"{stage} completed",
                    },
                    stage=stage,
                    message=f"{stage} completed in {elapsed:.2f} s" + (f": {note}" if note else ""),
                    # which job fields now hold this stage's results, for clients to fetch
                    data={
                        "elapsed_s": round(elapsed, 4),
                        "results": sorted(output.job_fields),
                        "node": output.node_id,  # the Ray node the stage ran on
                        "bytes_in": output.bytes_in,  # from the artifact store
                        "bytes_out": output.bytes_out,  # into it
                    },
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
            await self._sweep_quietly(run.job_id)
            self._finish_cancelled(run)
            log.info("cancelled")
        except PipelineError as err:
            await self._sweep_quietly(run.job_id)
            self._fail_or_retry(run, err, log)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the coordinator itself: fail the job, keep serving
            log.exception("internal error")
            await self._sweep_quietly(run.job_id)
            self._fail_or_retry(run, classify_failure(exc), log)
        finally:
            self._finish(run)

    def _finish_cancelled(self, run: RunningJob) -> None:
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

    def _fail_or_retry(self, run: RunningJob, err: PipelineError, log: Any) -> None:
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
                self._on_retry(run.job_id, delay)
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

    def sweep(self, job_id: str) -> list[str]:
        """Delete the job's objects that no artifact row names: what an attempt that failed,
        was cancelled or lost its node uploaded before it ended, and files a re-run stage
        replaced. Returns the keys deleted."""
        keys = set(self.store.list_keys(job_prefix(job_id)))
        kept = {a.storage_path for a in self.repo.list_artifacts(UUID(job_id))}
        orphans = sorted(keys - kept)
        if orphans:
            self.store.delete_keys(orphans)
            job_logger(job_id).info("removed %d unregistered object(s)", len(orphans))
        return orphans

    async def _sweep_quietly(self, job_id: str) -> None:
        try:
            await asyncio.to_thread(self.sweep, job_id)
        except Exception:  # the store is down: the next attempt's sweep tries again
            job_logger(job_id).warning("artifact sweep failed", exc_info=True)

    def _register_artifacts(self, job_id: str, stage: str, output: StageOutput) -> None:
        kinds = {spec.kind for spec in output.artifacts}
        if kinds:
            self.repo.delete_artifacts(UUID(job_id), kinds=sorted(kinds))
        for spec in output.artifacts:
            if spec.key is None or spec.size_bytes is None:
                raise PipelineError(f"the {stage} stage returned a {spec.kind} not in the store")
            name = PurePosixPath(spec.key).name
            self.repo.add_artifact(
                Artifact(
                    id=UUID(spec.id) if spec.id else uuid4(),
                    job_id=UUID(job_id),
                    kind=spec.kind,
                    filename=name,
                    storage_path=spec.key,
                    format=spec.format,
                    content_type=content_type_for(name),
                    size_bytes=spec.size_bytes,
                    duration_s=spec.duration_s,
                    meta={"stage": stage, **spec.metadata},
                )
            )
