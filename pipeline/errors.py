"""One error tree for every stage. Each error says whether a retry can help.

Outside errors (yt-dlp, ffmpeg exit status and stderr) are translated into these in the
stage modules; only the ingress turns them into HTTP status codes.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """A stage failed. `code` is a stable machine-readable reason, `message` is for people."""

    code: str = "pipeline_error"
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def __reduce__(self):  # keep code/retryable across pickling (Ray task boundaries)
        return (_rebuild, (type(self), self.message, self.code, self.retryable))

    def to_dict(self) -> dict[str, object]:
        return {"message": self.message, "code": self.code, "retryable": self.retryable}


def _rebuild(cls: type[PipelineError], message: str, code: str, retryable: bool) -> PipelineError:
    return cls(message, code=code, retryable=retryable)


class PolicyError(PipelineError):
    """The URL or the media is refused by policy (scheme, private address, size, length)."""

    code = "policy_violation"


class DownloadError(PipelineError):
    """The media could not be fetched. Network trouble is retryable; a 404 is not."""

    code = "download_failed"


class MediaError(PipelineError):
    """The file is not usable media: not a video, no audio track, truncated, corrupt."""

    code = "invalid_media"


class StageCancelled(PipelineError):
    """The stage was stopped because the job was cancelled."""

    code = "cancelled"


class StageTimeout(PipelineError):
    """The job ran past JOB_TIMEOUT."""

    code = "timeout"


class WorkerCrashed(PipelineError):
    """The process running a stage died (OOM kill, node lost). A retry can help."""

    code = "worker_crashed"
    retryable = True


class StorageError(PipelineError):
    """The artifact store could not be read or written (down, unreachable, refused)."""

    code = "storage_error"
    retryable = True


class TranscriptionError(PipelineError):
    """Speech recognition failed: the model or engine is missing, or decoding broke."""

    code = "transcription_failed"


def error_from_dict(error: dict[str, Any]) -> PipelineError:
    """The `PipelineError` an error payload (`PipelineError.to_dict()`, as the model
    deployments stream it) came from; code "cancelled" is a `StageCancelled`."""
    code = str(error.get("code", "model_error"))
    if code == "cancelled":
        return StageCancelled(str(error.get("message", "cancelled")))
    return PipelineError(
        str(error.get("message", "model call failed")),
        code=code,
        retryable=bool(error.get("retryable", False)),
    )
