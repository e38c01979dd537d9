"""What the OpenAI-compatible audio routes answer, from a job that has ended: the models
that `model` may name, and a finished transcription job in each `response_format`.

Plain functions of a `Job` and the settings' WHISPER_MODEL, so that every format is tested
without Ray; SRT and WebVTT are the transcription stage's own (pipeline/transcription/
subtitles.py), written from the job's segments.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from deployments.openai_errors import OpenAIError
from pipeline.results import Segment, TranscriptResult
from pipeline.transcription.subtitles import to_srt, to_txt, to_vtt
from storage.models import Job, JobStatus

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
Granularity = Literal["word", "segment"]
Task = Literal["transcribe", "translate"]
OPENAI_MODEL = "whisper-1"  # the name OpenAI's clients send; WHISPER_MODEL here
# OpenAI's diarizing model's name: WHISPER_MODEL with options.diarization here
OPENAI_DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
MODEL_CREATED = 1677610602  # OpenAI's `created` of whisper-1 (the models list needs one)
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "diarized_json": "application/json",
}

# A failed job's error_code (README, "Failures") and the HTTP status it is answered with:
# the input's fault is a 400; the service's a 500, 503 or 504.
FAILURE_STATUS = {
    "url_refused": 400,
    "not_found": 400,
    "forbidden": 400,
    "unsupported_url": 400,
    "not_media": 400,
    "corrupt_media": 400,
    "no_audio": 400,
    "too_large": 413,
    "too_long": 400,
    "invalid_options": 400,
    "model_unavailable": 503,
    "diarization_unavailable": 503,
    "worker_crashed": 503,
    "network_error": 503,
    "timeout": 504,
}


def model_ids(whisper_model: str) -> list[str]:
    """The names `model` may take, all WHISPER_MODEL: whisper-1, WHISPER_MODEL's own, and
    gpt-4o-transcribe-diarize (which also tells the speakers apart)."""
    return list(dict.fromkeys([OPENAI_MODEL, whisper_model, OPENAI_DIARIZE_MODEL]))


def diarizing(model: str, response_format: str) -> bool:
    """Whether a request asks for speakers: OpenAI's diarizing model or format."""
    return model.strip() == OPENAI_DIARIZE_MODEL or response_format == "diarized_json"


def resolve_model(name: str, whisper_model: str) -> str:
    """The Whisper model that `name` means, or a 400 `model_not_found`."""
    if name.strip() in model_ids(whisper_model):
        return whisper_model
    known = ", ".join(model_ids(whisper_model))
    raise OpenAIError(
        400,
        f"The model `{name}` does not exist; this server has {known}",
        "model",
        "model_not_found",
    )


def check_translatable(whisper_model: str) -> None:
    """A 400 when WHISPER_MODEL cannot translate: an English-only model (`*.en`)."""
    if whisper_model.endswith(".en"):
        raise OpenAIError(
            400,
            f"Translation needs a multilingual Whisper model; this server's WHISPER_MODEL "
            f"({whisper_model}) is English-only. Set WHISPER_MODEL to one such as `small`.",
            "model",
            "model_not_multilingual",
        )


def models_list(whisper_model: str) -> dict[str, Any]:
    """`GET /v1/models` in OpenAI's shape."""
    return {"object": "list", "data": [model_card(m) for m in model_ids(whisper_model)]}


def model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "vpa"}


def failure(job: Job) -> OpenAIError:
    """The error a job that did not complete is answered with."""
    if job.status == JobStatus.cancelled:
        return OpenAIError(409, f"job {job.id} was cancelled", None, "job_cancelled")
    code = job.error_code or "internal_error"
    status = FAILURE_STATUS.get(code, 500)
    param = "file" if status in (400, 413) else None
    return OpenAIError(status, job.error_message or f"job {job.id} failed", param, code)


def _segments(job: Job) -> list[Segment]:
    return [Segment.from_dict(s) for s in job.segments or ()]


def _duration(job: Job, segments: list[Segment]) -> float:
    """The media's duration, else the end of the last segment, in seconds."""
    if job.duration is not None:
        return round(job.duration, 3)
    return round(max((s.end_s for s in segments), default=0.0), 3)


def _text(job: Job) -> str:
    return (job.transcript or "").strip()


def render(
    job: Job,
    response_format: ResponseFormat,
    task: Task = "transcribe",
    granularities: Collection[Granularity] = (),
) -> tuple[str | dict[str, Any], str]:
    """A completed job's answer in `response_format`: (JSON body or text, media type)."""
    if job.status != JobStatus.completed:
        raise failure(job)
    if response_format == "json":
        return {"text": _text(job)}, MEDIA_TYPES["json"]
    if response_format == "verbose_json":
        return verbose(job, task, granularities), MEDIA_TYPES["verbose_json"]
    if response_format == "diarized_json":
        return diarized(job, task), MEDIA_TYPES["diarized_json"]
    if response_format == "srt":
        return to_srt(_segments(job)), "text/plain"
    if response_format == "vtt":
        return to_vtt(_segments(job)), "text/plain"
    if job.speakers:  # a diarized job's text: a paragraph per turn, "Speaker 1: ..."
        return to_txt(_transcript(job)), "text/plain"
    return _text(job) + "\n", "text/plain"


def _transcript(job: Job) -> TranscriptResult:
    return TranscriptResult(_text(job), tuple(_segments(job)), job.language or "", 1.0, 0.0)


def diarized(job: Job, task: Task) -> dict[str, Any]:
    """`diarized_json`: OpenAI's shape (`transcript.text.segment`s with a `speaker`)."""
    segments = _segments(job)
    return {
        "task": task,
        "duration": _duration(job, segments),
        "text": _text(job),
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{s.id}",
                "start": round(s.start_s, 3),
                "end": round(s.end_s, 3),
                "text": s.text.strip(),
                "speaker": s.speaker or "",
            }
            for s in segments
        ],
    }


def verbose(job: Job, task: Task, granularities: Collection[Granularity]) -> dict[str, Any]:
    """`verbose_json`: OpenAI's field names. Segments unless only words were asked for;
    words when asked for (`timestamp_granularities[]=word`)."""
    segments = _segments(job)
    body: dict[str, Any] = {
        "task": task,
        "language": job.language or "",
        "duration": _duration(job, segments),
        "text": _text(job),
    }
    temperature = float((job.options or {}).get("temperature") or 0.0)
    if "segment" in granularities or "word" not in granularities:
        body["segments"] = [
            {
                "id": s.id,
                "seek": round(s.start_s * 100),  # in 10 ms frames, as Whisper counts
                "start": round(s.start_s, 3),
                "end": round(s.end_s, 3),
                "text": s.text,
                "tokens": [],  # the engines do not keep token ids
                "temperature": temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
                **({"speaker": s.speaker} if s.speaker else {}),  # diarized jobs
            }
            for s in segments
        ]
    if "word" in granularities:
        body["words"] = [
            {
                "word": w.word.strip(),
                "start": round(w.start_s, 3),
                "end": round(w.end_s, 3),
                **({"speaker": w.speaker} if w.speaker else {}),
            }
            for s in segments
            for w in s.words
        ]
    return body
