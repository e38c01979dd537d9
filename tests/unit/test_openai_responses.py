"""A finished job in each OpenAI `response_format`, the models `model` may name, the error
of a job that did not complete (deployments/openai_responses.py), and the translation
options reaching the pipeline (pipeline/options.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from deployments.openai_errors import OpenAIError, from_detail
from deployments.openai_responses import (
    check_translatable,
    failure,
    models_list,
    render,
    resolve_model,
)
from pipeline.errors import TranscriptionError
from pipeline.options import TranscribeOptions, stage_options
from pipeline.transcription.whisper_engines import FasterWhisperEngine
from pipeline.types import CancelToken
from storage.models import Job, JobStatus
from storage.schemas import ProcessingOptions
from tests.fixtures.speech import SpeechSample, word_error_rate


def _word(word: str, start: float, end: float) -> dict[str, Any]:
    return {"word": word, "start": start, "end": end, "probability": 0.9}


SEGMENTS = [
    {
        "id": 0,
        "start": 0.0,
        "end": 1.5,
        "text": " Hello there.",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
        "compression_ratio": 1.1,
        "words": [_word(" Hello", 0.0, 0.6), _word(" there.", 0.7, 1.5)],
    },
    {
        "id": 1,
        "start": 2.0,
        "end": 3.5,
        "text": " General Kenobi.",
        "avg_logprob": -0.3,
        "no_speech_prob": 0.02,
        "compression_ratio": 1.2,
        "words": [_word(" General", 2.0, 2.6), _word(" Kenobi.", 2.7, 3.5)],
    },
]


def finished(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "youtube_url": "upload://x",
        "job_type": "transcription",
        "status": JobStatus.completed,
        "transcript": " Hello there. General Kenobi.",
        "segments": SEGMENTS,
        "language": "en",
        "duration": 4.0,
        "options": {"temperature": 0.2},
        **fields,
    }
    return Job(**values)


def test_json_and_text() -> None:
    assert render(finished(), "json") == (
        {"text": "Hello there. General Kenobi."},
        "application/json",
    )
    assert render(finished(), "text") == ("Hello there. General Kenobi.\n", "text/plain")


def test_srt_and_vtt_are_the_transcription_stages_own() -> None:
    srt, media_type = render(finished(), "srt")
    assert media_type == "text/plain"
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:02,000 --> 00:00:03,500\nGeneral Kenobi.\n"
    )
    vtt, _ = render(finished(), "vtt")
    assert vtt == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n"
        "00:00:02.000 --> 00:00:03.500\nGeneral Kenobi.\n"
    )


def test_verbose_json_in_openais_field_names() -> None:
    body, _ = render(finished(), "verbose_json", "transcribe", ["word", "segment"])
    assert isinstance(body, dict)
    assert {k: body[k] for k in ("task", "language", "duration", "text")} == {
        "task": "transcribe",
        "language": "en",
        "duration": 4.0,
        "text": "Hello there. General Kenobi.",
    }
    first = body["segments"][0]
    assert set(first) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature",
        "avg_logprob", "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    assert (first["start"], first["end"], first["seek"], first["temperature"]) == (0.0, 1.5, 0, 0.2)
    assert body["words"][1] == {"word": "there.", "start": 0.7, "end": 1.5}
    assert [w["word"] for w in body["words"]] == ["Hello", "there.", "General", "Kenobi."]


def test_verbose_json_granularities() -> None:
    segments_only, _ = render(finished(), "verbose_json")
    assert isinstance(segments_only, dict)
    assert "words" not in segments_only and len(segments_only["segments"]) == 2
    words_only, _ = render(finished(), "verbose_json", "transcribe", ["word"])
    assert isinstance(words_only, dict)
    assert "segments" not in words_only and len(words_only["words"]) == 4
    translated, _ = render(finished(duration=None), "verbose_json", "translate")
    assert isinstance(translated, dict)
    assert translated["task"] == "translate" and translated["duration"] == 3.5


def test_no_speech_is_empty_text_not_an_error() -> None:
    silent = finished(transcript="", segments=[])
    assert render(silent, "json")[0] == {"text": ""}
    assert render(silent, "srt")[0] == ""
    assert render(silent, "vtt")[0] == "WEBVTT\n"


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"status": JobStatus.failed, "error_code": "corrupt_media"}, 400, "corrupt_media", "file"),
        ({"status": JobStatus.failed, "error_code": "too_large"}, 413, "too_large", "file"),
        ({"status": JobStatus.failed, "error_code": "timeout"}, 504, "timeout", None),
        (
            {"status": JobStatus.failed, "error_code": "diarization_unavailable"},
            503,
            "diarization_unavailable",
            None,
        ),
        ({"status": JobStatus.failed, "error_code": None}, 500, "internal_error", None),
        ({"status": JobStatus.cancelled}, 409, "job_cancelled", None),
    ],
)
def test_a_job_that_did_not_complete(
    fields: dict[str, Any], status: int, code: str, param: str | None
) -> None:
    job = finished(error_message="why it failed", **fields)
    with pytest.raises(OpenAIError) as caught:
        render(job, "json")
    error = caught.value
    assert (error.status_code, error.code, error.param) == (status, code, param)
    assert failure(job).body()["error"]["code"] == code
    if fields["status"] is JobStatus.failed:
        assert error.message == "why it failed"


def test_models() -> None:
    assert resolve_model("whisper-1", "tiny.en") == "tiny.en"
    assert resolve_model("tiny.en", "tiny.en") == "tiny.en"
    assert resolve_model("gpt-4o-transcribe-diarize", "tiny.en") == "tiny.en"
    with pytest.raises(OpenAIError) as caught:
        resolve_model("base", "tiny.en")
    assert caught.value.body() == {
        "error": {
            "message": "The model `base` does not exist; this server has whisper-1, tiny.en, "
            "gpt-4o-transcribe-diarize",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    diarize = "gpt-4o-transcribe-diarize"
    assert [m["id"] for m in models_list("small")["data"]] == ["whisper-1", "small", diarize]
    assert [m["id"] for m in models_list("whisper-1")["data"]] == ["whisper-1", diarize]


def test_translation_needs_a_multilingual_model() -> None:
    with pytest.raises(OpenAIError) as caught:
        check_translatable("tiny.en")
    assert caught.value.status_code == 400 and caught.value.code == "model_not_multilingual"
    check_translatable("small")  # no error


def test_error_shapes_of_the_apps_answers() -> None:
    validation = {"detail": [{"loc": ["body", "model"], "msg": "Field required"}]}
    assert from_detail(422, validation).body()["error"] == {
        "message": "model: Field required",
        "type": "invalid_request_error",
        "param": "model",
        "code": "invalid_value",
    }
    refused = from_detail(422, {"detail": "no upload", "code": "upload_not_found"})
    assert (refused.status_code, refused.code) == (400, "upload_not_found")
    assert from_detail(503, {"detail": "db down"}).type == "server_error"
    assert from_detail(429, {"detail": "slow down"}).type == "rate_limit_error"


def test_the_openai_options_reach_the_transcription_stage() -> None:
    options = ProcessingOptions(task="translate", initial_prompt="Kenobi", temperature=0.4)
    transcribe = stage_options(options.model_dump(mode="json")).transcribe
    assert (transcribe.task, transcribe.initial_prompt) == ("translate", "Kenobi")
    assert transcribe.temperature == (0.4, 0.6, 0.8, 1.0)
    fixed = ProcessingOptions(temperature=0.4, temperature_fallback=False).model_dump()
    assert stage_options(fixed).transcribe.temperature == (0.4,)
    default = stage_options(ProcessingOptions().model_dump()).transcribe
    assert (default.task, default.initial_prompt) == ("transcribe", None)
    assert default.temperature == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    with pytest.raises(ValidationError):
        ProcessingOptions(initial_prompt="nul\x00")


def test_task_and_prompt_reach_faster_whisper(speech_sample: SpeechSample) -> None:
    """The real engine (tiny.en) hands `task` and `initial_prompt` to faster-whisper, and
    refuses to translate with an English-only model (the job API's jobs too)."""
    engine = FasterWhisperEngine("tiny.en")
    seen: list[dict[str, Any]] = []
    model = engine._model
    real = model.transcribe

    def spy(audio: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(audio, **kwargs)

    model.transcribe = spy
    options = TranscribeOptions(initial_prompt="Quick brown fox.")
    result = engine.transcribe(speech_sample.path, options, lambda *_: None, CancelToken())
    assert seen and all(
        (k["task"], k["initial_prompt"]) == ("transcribe", "Quick brown fox.") for k in seen
    )
    assert word_error_rate(speech_sample.text, result.text) < 0.3
    seen.clear()
    translate = TranscribeOptions(task="translate")
    with pytest.raises(TranscriptionError, match="multilingual") as caught:
        engine.transcribe(speech_sample.path, translate, lambda *_: None, CancelToken())
    assert caught.value.code == "invalid_options" and seen == []
