"""Errors the coordinator raises to its callers. The ingress maps them to HTTP codes.

Ray re-raises an actor method's exception in the caller as a subclass of the original
class, so `except JobNotFound` works across the actor boundary.
"""

from __future__ import annotations

from pipeline.errors import (
    PipelineError,
    StageCancelled,
    WorkerCrashed,
)
from storage.db import unreachable_reason


class CoordinatorError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __reduce__(self):  # keep `detail` across pickling
        return (type(self), (self.detail,))


class JobNotFound(CoordinatorError):
    status_code = 404


class DatabaseUnavailable(CoordinatorError):
    """The coordinator could not reach the database for a command (HTTP 503, Retry-After)."""

    status_code = 503


def unavailable_detail(exc: BaseException) -> str:
    """What a client is told while the database is unreachable, with the driver's reason."""
    return f"the database is unavailable, try again shortly ({unreachable_reason(exc)})"


class TooManyRequests(CoordinatorError):
    """An API key's limit was reached (HTTP 429); waiting `retry_after_s` helps, if set."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    def __reduce__(self):  # keep both across pickling
        return (type(self), (self.detail, self.retry_after_s))


def too_many_active(limit: int) -> TooManyRequests:
    return TooManyRequests(
        f"this API key already has {limit} job(s) queued or processing, its limit "
        "(MAX_ACTIVE_JOBS_PER_KEY or the key's own): wait for one to finish"
    )


class JobConflict(CoordinatorError):
    """The job is not in a state that allows the operation (HTTP 409)."""

    status_code = 409


def classify_failure(exc: BaseException) -> PipelineError:
    """Translate whatever a stage raised (through Ray) into a `PipelineError`."""
    import ray.exceptions as rex

    # Ray raises a RayTaskError that also subclasses the stage's error class but carries
    # only class-level attributes: the original, with its code, is in `.cause`.
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PipelineError):
        return cause
    if isinstance(exc, PipelineError):
        return exc
    if isinstance(exc, rex.TaskCancelledError) or isinstance(cause, KeyboardInterrupt):
        return StageCancelled("the job was cancelled")
    crashed = (
        rex.WorkerCrashedError,
        rex.NodeDiedError,
        rex.ObjectLostError,
        rex.OutOfMemoryError,
        rex.LocalRayletDiedError,
    )
    if isinstance(exc, crashed):
        return WorkerCrashed(f"the worker running the stage died: {type(exc).__name__}")
    detail = str(cause) if cause is not None else str(exc)
    name = type(cause).__name__ if cause is not None else type(exc).__name__
    return PipelineError(f"internal error in stage: {name}: {detail[:500]}", code="internal_error")
