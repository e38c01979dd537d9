"""Running one job: its stages in order, their progress reports, and how the attempt ends.

`JobRunner` is the half of the coordinator that owns the jobs in flight; `CoordinatorCore`
(actors/coordinator_core.py) keeps the queue, picks a job and a worker slot and hands them to
`start`. Rules it keeps:
- a job runs its chain of stages from the first one without a checkpoint; each stage is
  bracketed by stage_started and stage_completed writes, the latter with the new checkpoint;
- the whole attempt runs under the job's timeout (`job_timeout_s`): the stage running at
  the deadline is killed and the job fails with code "timeout";
- a cancel (`stop`) asks the running stage to stop, then interrupts it after
  `cancel_grace_s`, then kills it `INTERRUPT_GRACE_S` later;
- progress from a stage task is persisted at most every `progress_persist_interval_s`;
  reports from a stale attempt or a finished stage are dropped;
- a retryable failure is retried with exponential backoff up to the job's max_retries
  (`on_retry` holds it back for the delay); otherwise the job fails (actors/job_endings.py);
- the attempt's writes wait out a database outage (actors/db_outage.py); one that outlasts
  `db_outage_max_s` leaves the job `processing`, written as it was, and calls `on_db_down`:
  the coordinator resumes it from its checkpoints once the database is back;
- however the attempt ends, the runner drops it and calls `on_finished` to free its slot.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from actors import metrics
from actors.clock import Clock, LoopTimer, Timer, finished_within
from actors.coordinator_config import CoordinatorConfig
from actors.db_outage import DatabaseDown
from actors.errors import classify_failure
from actors.job_artifacts import JobArtifacts
from actors.job_endings import JobEndings
from actors.running_job import JobWriter, RunningJob
from actors.stage_runner import StageRunner
from config.logging import JobLogger, bind_job, job_logger
from pipeline.errors import PipelineError, StageCancelled, StageTimeout
from pipeline.options import stage_options
from pipeline.stages import StageInput, StageOutput, overall_progress
from storage.artifacts import ArtifactStore
from storage.db import database_unreachable, unreachable_reason
from storage.models import EventType, Job, JobStatus
from storage.repository import JobRepository

INTERRUPT_GRACE_S = 2.0  # after the interrupt, before the stage's worker is killed
KILL_WAIT_S = 10.0  # after the kill, the longest a cancel waits for the attempt to end


class JobRunner:
    """Runs dispatched attempts and holds them while they run (`running`).

    It calls back into the coordinator: `on_retry(job_id, delay_s)` once a retry has been
    written, to hold the job back for its backoff; `on_finished(run)` once an ended attempt
    has been dropped, to give its slot back; `on_db_down()` once it gave an attempt up to a
    database outage. `clock` and `timer` measure and wait out
    the job timeout, the cancel grace periods and the progress throttle.
    """

    def __init__(
        self,
        repo: JobRepository,
        store: ArtifactStore,
        config: CoordinatorConfig,
        stages: StageRunner,
        write: JobWriter,
        now: Callable[[], datetime],
        on_retry: Callable[[str, float], None],
        on_finished: Callable[[RunningJob], None],
        clock: Clock = time.monotonic,
        timer: Timer | None = None,
        on_db_down: Callable[[], None] = lambda: None,
    ) -> None:
        self.repo = repo
        self.artifacts = JobArtifacts(repo, store)
        self.config = config
        self._stages = stages
        self._write = write
        self._now = now
        self._on_finished = on_finished
        self._on_db_down = on_db_down
        self._retry = write.retry
        self._endings = JobEndings(write, lambda: self.config, now, on_retry)
        self._clock = clock
        self._timer = timer or LoopTimer()
        self.running: dict[str, RunningJob] = {}
        self.dispatch_overhead_s: list[float] = []
        self._db = write.db
        self._progress_writes: set[asyncio.Task[Job | None]] = set()

    def start(self, run: RunningJob, job: Job, freed_at: float) -> None:
        """Run an attempt that has been written as started; `freed_at` is when its slot was
        taken (on the runner's clock), for the dispatch overhead."""
        self.running[run.job_id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run, job, freed_at))

    def _finish(self, run: RunningJob) -> None:
        self._drop_progress(run)
        self.running.pop(run.job_id, None)
        self._on_finished(run)

    async def stop(self, run: RunningJob) -> None:
        """Cancel a running attempt: ask its stage to stop, interrupt it if it has not
        stopped within `cancel_grace_s`, kill it if it has not ended `INTERRUPT_GRACE_S`
        later. Returns once the attempt has ended, or `KILL_WAIT_S` after the kill."""
        run.cancel_requested = True  # also what `should_stop` answers the stage from now on
        task = run.task
        if task is None:
            return
        if run.handle is not None:
            run.handle.stop()
        if await finished_within(task, self.config.cancel_grace_s, self._timer):
            return
        if run.handle is not None:
            run.handle.interrupt()
        if await finished_within(task, INTERRUPT_GRACE_S, self._timer):
            return
        if run.handle is not None:
            run.handle.kill()
        await finished_within(task, KILL_WAIT_S, self._timer)

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
        run.last_heartbeat = self._now()
        run.pending_progress = (fraction, message)
        interval = self.config.progress_persist_interval_s
        wait = 0.0 if run.last_persist is None else run.last_persist + interval - self._clock()
        if wait <= 0:
            self._flush_progress(run)
        elif run.flush_timer is None:
            run.flush_timer = self._timer.call_later(
                wait, functools.partial(self._flush_progress, run)
            )

    def _drop_progress(self, run: RunningJob) -> None:
        """Forget a report not yet written: its stage has ended, and a late write would
        count its fraction towards the next stage."""
        run.pending_progress = None
        if run.flush_timer is not None:
            run.flush_timer.cancel()
            run.flush_timer = None

    def _flush_progress(self, run: RunningJob) -> None:
        """Write the latest report, in a task: the write waits on the database thread, and
        that thread's order puts it before the stage's stage_completed."""
        run.flush_timer = None
        if run.pending_progress is None or self.running.get(run.job_id) is not run:
            return
        fraction, message = run.pending_progress
        run.pending_progress = None
        run.last_persist = self._clock()
        progress = overall_progress(run.chain, run.done, run.stage, fraction)
        write = self._write(
            run.job_id,
            EventType.progress,
            {"progress": progress, "status_message": message},
            stage=run.stage,
            message=message,
            data={"stage_fraction": round(fraction, 4)},
            expected={JobStatus.processing},
        )
        task = asyncio.get_running_loop().create_task(write)
        self._progress_writes.add(task)
        task.add_done_callback(functools.partial(self._progress_written, run.job_id))

    async def progress_flushed(self) -> None:
        """Wait until the progress writes started so far have ended."""
        await asyncio.gather(*self._progress_writes, return_exceptions=True)

    def _progress_written(self, job_id: str, task: asyncio.Task[Job | None]) -> None:
        self._progress_writes.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and database_unreachable(exc):
            job_logger(job_id).warning("progress not written: %s", unreachable_reason(exc))
        elif exc is not None:
            job_logger(job_id).warning("progress write failed", exc_info=exc)

    # ----------------------------------------------------------------- one attempt
    async def _run(self, run: RunningJob, job: Job, freed_at: float) -> None:
        bind_job(run.job_id)  # this asyncio task's log lines carry the job id
        log = job_logger(run.job_id)
        log.info("attempt %d started (stages: %s)", run.attempt, " -> ".join(run.chain))
        try:
            await self._attempt(run, job, freed_at, log)
        except DatabaseDown as exc:
            log.error("%s; the job stays processing and resumes once it is back", exc)
            self._on_db_down()
        finally:
            self._finish(run)

    async def _attempt(self, run: RunningJob, job: Job, freed_at: float, log: JobLogger) -> None:
        try:
            await self._run_stages(run, job, freed_at, log)
            await self._endings.complete(run)
            log.info("completed")
        except StageCancelled:
            await self.artifacts.sweep_quietly(run.job_id)
            await self._endings.cancelled(run)
            log.info("cancelled")
        except PipelineError as err:
            await self.artifacts.sweep_quietly(run.job_id)
            await self._endings.fail_or_retry(run, err, log)
        except (asyncio.CancelledError, DatabaseDown):
            raise
        except Exception as exc:  # a bug in the coordinator itself: fail the job, keep serving
            if database_unreachable(exc):  # a database call not made through `_retry`
                raise DatabaseDown(f"the database is unreachable: {exc}") from exc
            log.exception("internal error")
            await self.artifacts.sweep_quietly(run.job_id)
            await self._endings.fail_or_retry(run, classify_failure(exc), log)

    async def _run_stages(self, run: RunningJob, job: Job, freed_at: float, log: JobLogger) -> None:
        """Run the stages of the chain not yet checkpointed, in order, each bracketed by its
        stage_started and stage_completed writes."""
        checkpoints: dict[str, dict[str, Any]] = dict(job.stage_outputs or {})
        timings: dict[str, float] = dict(job.stage_timings or {})
        first_stage = True
        for stage in run.chain:
            if stage in run.done:
                continue
            if run.cancel_requested:
                raise StageCancelled("the job was cancelled")
            run.stage = stage
            await self._write(
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
                until_up=True,
            )
            if first_stage:
                self.dispatch_overhead_s.append(self._clock() - freed_at)
                del self.dispatch_overhead_s[:-10_000]
                first_stage = False
            t0 = self._clock()
            output = await self._run_stage(run, stage, self._stage_input(job, checkpoints))
            elapsed = self._clock() - t0
            self._drop_progress(run)
            await self._retry(
                functools.partial(self._db.run, self.artifacts.register, run.job_id, stage, output),
                f"the {stage} artifacts of job {run.job_id}",
            )
            await self._retry(
                functools.partial(asyncio.to_thread, self.artifacts.sweep, run.job_id),
                f"the artifact sweep of job {run.job_id}",
            )
            checkpoints[stage] = output.checkpoint
            timings[stage] = round(elapsed, 4)
            metrics.stage_finished(stage, elapsed)
            metrics.stage_figures(output.figures)
            run.done.add(stage)
            await self._stage_completed(run, stage, output, elapsed, checkpoints, timings)
            log.info("stage %s completed in %.2f s", stage, elapsed)
        run.stage = None

    def _stage_input(self, job: Job, checkpoints: dict[str, dict[str, Any]]) -> StageInput:
        return StageInput(
            job_id=str(job.id),
            url=job.youtube_url,
            options=stage_options(job.options or {}),
            work_dir="",  # the stage task's scratch directory, on its node
            checkpoints=checkpoints,
            fetch_options=self.config.fetch_options,
            job_type=str(job.job_type),
        )

    async def _run_stage(self, run: RunningJob, stage: str, inp: StageInput) -> StageOutput:
        """Run one stage under what is left of the attempt's timeout. A stage that runs
        past it is killed; whatever else ends it becomes a `PipelineError`."""
        handle = run.handle = self._stages.start(stage, inp, run.attempt)
        result = asyncio.ensure_future(handle.result())
        remaining_s = run.started_at + self.config.job_timeout_s - self._clock()
        try:
            finished = await finished_within(result, remaining_s, self._timer)
        except asyncio.CancelledError:
            result.cancel()
            handle.kill()
            raise
        finally:
            run.handle = None
        if not finished:
            result.cancel()
            handle.kill()
            raise StageTimeout(
                f"the job ran past JOB_TIMEOUT ({self.config.job_timeout_s:g} s) "
                f"during the {stage} stage"
            )
        try:
            output = result.result()
        except BaseException as exc:
            if run.cancel_requested:
                raise StageCancelled("the job was cancelled") from exc
            raise classify_failure(exc) from exc
        if run.cancel_requested:
            raise StageCancelled("the job was cancelled")
        return output

    async def _stage_completed(
        self,
        run: RunningJob,
        stage: str,
        output: StageOutput,
        elapsed: float,
        checkpoints: dict[str, dict[str, Any]],
        timings: dict[str, float],
    ) -> None:
        note = output.checkpoint.get("note")  # e.g. why a stage produced nothing
        await self._write(
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
            until_up=True,
        )
