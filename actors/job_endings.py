"""How an attempt ends, written for `JobRunner` (actors/job_runner.py): completed,
cancelled, retried after a backoff, or failed. Each write waits out a database outage
(`until_up`, actors/db_outage.py) and is made only while the job is still `processing`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from actors.coordinator_config import CoordinatorConfig, backoff_s
from actors.running_job import JobWriter, RunningJob
from config.logging import JobLogger
from pipeline.errors import PipelineError
from storage.models import EventType, JobStatus


class JobEndings:
    """`on_retry(job_id, delay_s)` is called once a retry has been written, to hold the job
    back for its backoff; `config()` is the coordinator's current configuration."""

    def __init__(
        self,
        write: JobWriter,
        config: Callable[[], CoordinatorConfig],
        now: Callable[[], datetime],
        on_retry: Callable[[str, float], None],
    ) -> None:
        self._write = write
        self._config = config
        self._now = now
        self._on_retry = on_retry

    async def complete(self, run: RunningJob) -> None:
        await self._write(
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
            until_up=True,
        )

    async def cancelled(self, run: RunningJob) -> None:
        await self._write(
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
            until_up=True,
        )

    async def fail_or_retry(self, run: RunningJob, err: PipelineError, log: JobLogger) -> None:
        db, repo = self._write.db, self._write.repo
        job = await self._write.retry(
            lambda: db.run(repo.get_job, UUID(run.job_id)), f"the job {run.job_id}"
        )
        if job is None:
            return
        if err.retryable and job.retry_count < job.max_retries:
            number = job.retry_count + 1
            delay = backoff_s(self._config(), number)
            due = self._now() + timedelta(seconds=delay)
            log.warning(
                "stage %s failed (%s); retry %d in %.1f s", run.stage, err.code, number, delay
            )
            written = await self._write(
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
                until_up=True,
            )
            if written is not None:
                self._on_retry(run.job_id, delay)
            return
        log.warning("failed in stage %s: %s (%s)", run.stage, err.message, err.code)
        await self._write(
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
            until_up=True,
        )
