"""`ServeModels` reads a model deployment's stream: progress, then a result or an error; a
replica that dies mid-request is a retryable `worker_crashed`, anything else passes through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray.exceptions as rex
from ray.serve.exceptions import RayServeException, ReplicaUnavailableError

from actors.errors import classify_failure
from actors.stage_task import ServeModels, replica_died
from pipeline.errors import PipelineError, StageCancelled, WorkerCrashed
from pipeline.options import TranscribeOptions
from pipeline.types import CancelToken


class _Stream:
    """A streaming response: `items`, then `error` raised where the replica would fail."""

    def __init__(self, items: list[dict[str, Any]], error: BaseException | None = None) -> None:
        self._items = items
        self._error = error
        self.cancelled = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self._items
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self.cancelled = True


class _Method:
    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def remote(self, *_args: object, **_kwargs: object) -> _Stream:
        return self._stream


class _Handle:
    """A deployment handle whose `transcribe` and `analyze` answer with one stream."""

    def __init__(self, stream: _Stream) -> None:
        self.transcribe = self.analyze = _Method(stream)

    def options(self, **_options: object) -> _Handle:
        return self


def _served_upstream_death() -> RayServeException:
    wrapped = RayServeException("Request to deployment 'Transcriber' failed")
    wrapped.__cause__ = rex.ActorDiedError()
    return wrapped


REPLICA_DEATHS = [
    pytest.param(rex.ActorDiedError(), id="actor-died"),
    pytest.param(rex.ActorUnavailableError("connection lost", None), id="actor-unavailable"),
    pytest.param(rex.RayActorError(), id="actor-error"),
    pytest.param(ReplicaUnavailableError("Transcriber#abc"), id="replica-unavailable"),
    pytest.param(_served_upstream_death(), id="serve-wrapped"),
]


def _transcribe(stream: _Stream, progress: list[tuple[float, str]]) -> dict[str, Any]:
    models = ServeModels(_Handle(stream), _Handle(stream))
    return models.transcribe(
        "job/audio.flac", TranscribeOptions(), lambda f, m: progress.append((f, m)), CancelToken()
    )


@pytest.mark.parametrize("death", REPLICA_DEATHS)
def test_a_replica_dying_mid_request_is_a_retryable_worker_crash(death: BaseException) -> None:
    progress_item = {"type": "progress", "fraction": 0.3, "message": "transcribed 7.0 s"}
    stream = _Stream([progress_item], death)
    seen: list[tuple[float, str]] = []
    with pytest.raises(WorkerCrashed) as caught:
        _transcribe(stream, seen)
    err = caught.value
    assert (err.code, err.retryable) == ("worker_crashed", True)
    assert "model replica died" in err.message and type(death).__name__ in err.message
    assert seen == [(0.3, "transcribed 7.0 s")]
    assert stream.cancelled
    # What the coordinator makes of it once Ray has carried it out of the stage task.
    wrapped = rex.RayTaskError("run_stage_task", "Traceback ...", err).as_instanceof_cause()
    classified = classify_failure(wrapped)
    assert (classified.code, classified.retryable) == ("worker_crashed", True)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(ValueError("bad input"), id="plain-error"),
        pytest.param(RayServeException("deployment misconfigured"), id="serve-no-cause"),
        pytest.param(rex.GetTimeoutError("slow"), id="ray-not-actor"),
    ],
)
def test_other_failures_pass_through_unchanged(other: BaseException) -> None:
    stream = _Stream([], other)
    with pytest.raises(type(other)) as caught:
        _transcribe(stream, [])
    assert caught.value is other
    assert not replica_died(other)
    assert stream.cancelled


def test_a_stream_that_cannot_be_cancelled_still_reports_the_crash() -> None:
    class _Stubborn(_Stream):
        def cancel(self) -> None:
            raise rex.ActorDiedError()

    with pytest.raises(WorkerCrashed):
        _transcribe(_Stubborn([], rex.ActorDiedError()), [])


def test_an_error_item_is_the_replicas_error_and_a_result_is_returned() -> None:
    error = {"type": "error", "error": {"message": "no such model", "code": "model_unavailable"}}
    with pytest.raises(PipelineError) as caught:
        _transcribe(_Stream([error]), [])
    assert caught.value.code == "model_unavailable" and not caught.value.retryable
    assert _transcribe(_Stream([{"type": "result", "result": {"text": "hi"}}]), []) == {
        "text": "hi"
    }


def test_a_cancelled_job_stops_reading_and_cancels_the_request() -> None:
    stream = _Stream([{"type": "progress", "fraction": 0.1, "message": "started"}])
    token = CancelToken()
    token.cancel()
    models = ServeModels(_Handle(stream), _Handle(stream))
    with pytest.raises(StageCancelled):
        models.analyze("text", [], None, None, lambda f, m: None, token)  # type: ignore[arg-type]
    assert stream.cancelled


def test_a_stream_without_a_result_is_a_model_error() -> None:
    with pytest.raises(PipelineError) as caught:
        _transcribe(_Stream([]), [])
    assert caught.value.code == "model_error"
