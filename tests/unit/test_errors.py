"""Errors survive the trip through a model deployment's stream as data."""

from __future__ import annotations

from pipeline.errors import MediaError, PipelineError, StageCancelled, error_from_dict


def test_an_error_payload_becomes_the_error_again() -> None:
    sent = MediaError("the audio is missing", code="file_missing", retryable=True)
    back = error_from_dict(sent.to_dict())
    assert type(back) is PipelineError  # the payload carries no class, only these three
    assert (back.message, back.code, back.retryable) == (
        "the audio is missing",
        "file_missing",
        True,
    )


def test_a_cancelled_payload_is_a_cancellation() -> None:
    back = error_from_dict({"message": "Transcription cancelled", "code": "cancelled"})
    assert isinstance(back, StageCancelled) and back.message == "Transcription cancelled"


def test_a_payload_without_details_still_says_something() -> None:
    back = error_from_dict({})
    assert (back.code, back.retryable, back.message) == ("model_error", False, "model call failed")
