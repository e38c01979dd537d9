"""The Ray task that runs one pipeline stage: a thin shell around `pipeline.stages.run_stage`.

Progress goes back to the coordinator as fire-and-forget actor calls, throttled here so a
chatty stage (yt-dlp calls its hook per chunk) costs the coordinator a few calls a second.
Cancellation arrives as `ray.cancel(ref)`, which raises KeyboardInterrupt in this task;
the stage code kills its children on the way out (see `pipeline.ffmpeg.run_ffmpeg`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from config.logging import bind_job, configure_logging
from pipeline.stages import StageInput, StageOutput, run_stage
from pipeline.types import CancelToken

log = logging.getLogger("vpa.stage")

# CPU reserved per stage task: I/O-bound fetches take little, ffmpeg takes more.
STAGE_NUM_CPUS: dict[str, float] = {"fetch": 0.25, "audio": 0.5}
DEFAULT_STAGE_NUM_CPUS = 0.5
PROGRESS_INTERVAL_S = 0.25


class _ThrottledReporter:
    def __init__(self, coordinator: Any, job_id: str, attempt: int, stage: str) -> None:
        self._coordinator = coordinator
        self._key = (job_id, attempt, stage)
        self._last_at = 0.0
        self._last_fraction = -1.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_at < PROGRESS_INTERVAL_S:
            return
        if fraction == self._last_fraction and now - self._last_at < 2.0:
            return
        self._last_at, self._last_fraction = now, fraction
        job_id, attempt, stage = self._key
        self._coordinator.report_progress.remote(job_id, attempt, stage, fraction, message)


@ray.remote(max_retries=0)
def run_stage_task(
    name: str, inp: StageInput, coordinator: Any, attempt: int, log_level: str = "INFO"
) -> StageOutput:
    configure_logging(log_level)  # console only: Ray keeps each worker's output in its logs
    bind_job(inp.job_id)
    log.info("stage %s starting (attempt %d)", name, attempt)
    reporter = _ThrottledReporter(coordinator, inp.job_id, attempt, name)
    return run_stage(name, inp, reporter, CancelToken())


def submit_stage(name: str, inp: StageInput, coordinator: Any, attempt: int, log_level: str) -> Any:
    num_cpus = STAGE_NUM_CPUS.get(name, DEFAULT_STAGE_NUM_CPUS)
    return run_stage_task.options(num_cpus=num_cpus, name=f"vpa-{name}-{inp.job_id[:8]}").remote(
        name, inp, coordinator, attempt, log_level
    )
