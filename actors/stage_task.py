"""The Ray task that runs one pipeline stage: a thin shell around `pipeline.stages.run_stage`.

Progress goes back to the coordinator as fire-and-forget actor calls, throttled here so a
chatty stage (yt-dlp calls its hook per chunk) costs the coordinator a few calls a second.
Cancellation arrives two ways. A watcher thread asks the coordinator twice a second whether
this attempt should stop and sets the stage's `CancelToken`, which every stage polls
(`pipeline.media.ffmpeg.run_ffmpeg` kills its child and the stage removes its partial files).
`ray.cancel(ref)` also raises KeyboardInterrupt in the task, but that asynchronous exception
can land where it is swallowed (in a fork handler of `subprocess.Popen`, say), so it is only
the backstop; after CANCEL_GRACE_S the coordinator force-kills the worker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import replace
from typing import Any

import ray
import ray.exceptions as rex
from ray.serve.exceptions import RayServeException, ReplicaUnavailableError

from actors.stage_files import remove_stale, stage_in, stage_out, stage_workspace
from config.logging import LogConfig, current_job_id, setup_logging
from pipeline.errors import PipelineError, StageCancelled, WorkerCrashed, error_from_dict
from pipeline.options import AnalyzeOptions, TranscribeOptions
from pipeline.stages import StageInput, StageOutput, run_stage
from pipeline.types import CancelToken, ProgressCallback
from storage.stores import StorageConfig, node_scratch, open_store

log = logging.getLogger("vpa.stage")

# CPU reserved per stage task: I/O-bound fetches take little, ffmpeg takes more, and the
# model stages only wait for the model deployments (which hold their own CPUs or GPUs).
STAGE_NUM_CPUS: dict[str, float] = {"fetch": 0.25, "audio": 0.5, "transcribe": 0, "analyze": 0}
DEFAULT_STAGE_NUM_CPUS = 0.5
PROGRESS_INTERVAL_S = 0.25
CANCEL_POLL_S = 0.5


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


class _CancelWatcher:
    """Sets `token` once the coordinator says this attempt should stop."""

    def __init__(self, coordinator: Any, job_id: str, attempt: int, token: CancelToken) -> None:
        self._coordinator = coordinator
        self._args = (job_id, attempt)
        self._token = token
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cancel-watcher", daemon=True)

    def __enter__(self) -> _CancelWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(CANCEL_POLL_S):
            with contextlib.suppress(Exception):  # a busy or restarting coordinator: ask again
                ref = self._coordinator.should_stop.remote(*self._args)
                if ray.get(ref, timeout=10):
                    self._token.cancel()
                    return


def replica_died(exc: BaseException) -> bool:
    """Whether a model call failed because its replica died or became unreachable: a Ray
    actor error (the replica is a Serve actor), Serve's "replica no longer available", or a
    Serve error caused by either (Serve wraps some actor deaths with a clearer message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, rex.RayActorError | ReplicaUnavailableError):
            return True
        if not isinstance(current, RayServeException):
            return False
        seen.add(id(current))
        current = current.__cause__
    return False


class ServeModels:
    """`ModelServices` over the Transcriber and Analyzer deployment handles.

    Both stream progress items and then one result or error item (deployments/model_calls).
    If this task is interrupted (the job was cancelled), the request is cancelled too, which
    stops the model work in the replica. A replica that dies mid-request (killed, OOM, its
    node lost) fails the stage with the retryable `WorkerCrashed`: Serve starts a new
    replica, and the coordinator's next attempt reaches it.
    """

    def __init__(self, transcriber: Any, analyzer: Any) -> None:
        self._transcriber = transcriber
        self._analyzer = analyzer

    @staticmethod
    def _consume(stream: Any, progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
        try:
            for item in stream:
                if cancel.cancelled:
                    raise StageCancelled("the job was cancelled")
                if item["type"] == "progress":
                    progress(item["fraction"], item["message"])
                elif item["type"] == "error":
                    raise error_from_dict(item["error"])
                else:
                    result: dict[str, Any] = item["result"]
                    return result
        except BaseException as exc:
            with contextlib.suppress(Exception):  # a dead replica's stream may refuse too
                stream.cancel()
            if replica_died(exc):
                raise WorkerCrashed(
                    f"the model replica died during the request: {type(exc).__name__}: "
                    f"{str(exc)[:300]}"
                ) from exc
            raise
        raise PipelineError("the model deployment ended without a result", code="model_error")

    def transcribe(
        self,
        audio_key: str,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]:
        handle = self._transcriber.options(stream=True)
        stream = handle.transcribe.remote(audio_key, options, job_id=current_job_id())
        return self._consume(stream, progress, cancel)

    def analyze(
        self,
        text: str,
        segments: list[dict[str, Any]],
        options: AnalyzeOptions,
        language: str | None,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]:
        handle = self._analyzer.options(stream=True)
        stream = handle.analyze.remote(text, segments, options, language, job_id=current_job_id())
        return self._consume(stream, progress, cancel)


@ray.remote(max_retries=0)
def run_stage_task(
    name: str,
    inp: StageInput,
    coordinator: Any,
    attempt: int,
    storage: StorageConfig,
    logs: LogConfig | None = None,
    models: ServeModels | None = None,
) -> StageOutput:
    """Run one stage on this node: inputs from the store into a scratch directory, the
    stage, its outputs into the store; the scratch directory is removed however it ends."""
    setup_logging(logs or LogConfig(), f"stage:{name}", inp.job_id, required=False)
    node = ray.get_runtime_context().get_node_id()
    log.info("stage %s starting (attempt %d) on node %s", name, attempt, node[:12])
    store = open_store(storage)
    reporter = _ThrottledReporter(coordinator, inp.job_id, attempt, name)
    token = CancelToken()
    scratch = node_scratch(storage, node)
    remove_stale(scratch, storage.scratch_max_age_s)
    with (
        _CancelWatcher(coordinator, inp.job_id, attempt, token),
        stage_workspace(scratch, inp.job_id, name, attempt) as work,
    ):
        local_inp, bytes_in = stage_in(store, inp, name, work)
        output = run_stage(name, local_inp, reporter, token, models)
        output = stage_out(store, inp.job_id, output)
        return replace(output, node_id=node, bytes_in=output.bytes_in + bytes_in)


def submit_stage(
    name: str,
    inp: StageInput,
    coordinator: Any,
    attempt: int,
    storage: StorageConfig,
    logs: LogConfig,
    models: ServeModels | None = None,
    resources: dict[str, float] | None = None,
) -> Any:
    """Start a stage task. `resources` (custom Ray resources) pins stages to nodes that
    declare them (STAGE_RESOURCES)."""
    num_cpus = STAGE_NUM_CPUS.get(name, DEFAULT_STAGE_NUM_CPUS)
    task = run_stage_task.options(
        num_cpus=num_cpus, name=f"vpa-{name}-{inp.job_id[:8]}", resources=resources or {}
    )
    return task.remote(name, inp, coordinator, attempt, storage, logs, models)
