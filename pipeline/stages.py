"""Job types as chains of stages, and the dispatch from a stage name to its pure function.

No Ray and no database here: `run_stage` takes a `StageInput` and returns a `StageOutput`
(a JSON-able checkpoint, the artifacts to register, the job fields to set). The coordinator
persists the checkpoint, so a retry resumes after the last completed stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.clips.stage import check_clip_options, run_clips
from pipeline.errors import MediaError, PipelineError
from pipeline.media.audio import extract_audio
from pipeline.media.fetch import fetch, fetch_local
from pipeline.media.probe import probe
from pipeline.media.soft_subtitles import mux_subtitles
from pipeline.results import TranscriptResult
from pipeline.stage_io import (
    ArtifactSpec,
    ModelServices,
    StageInput,
    StageOutput,
    checkpoint_file,
    checkpoint_key,
)
from pipeline.transcription.subtitles import write_subtitles
from pipeline.types import CancelToken, ProgressCallback

STAGE_CHAINS: dict[str, tuple[str, ...]] = {
    "audio_extraction": ("fetch", "audio"),
    "transcription": ("fetch", "audio", "transcribe"),
    "analysis": ("fetch", "audio", "transcribe", "analyze"),
    "clip_generation": ("fetch", "audio", "transcribe", "analyze", "clips"),
    "full_processing": ("fetch", "audio", "transcribe", "analyze", "clips", "subtitles"),
}

# Relative cost of each stage, used to weight the job's single 0-100 progress number.
STAGE_WEIGHTS: dict[str, float] = {
    "fetch": 3.0,
    "audio": 1.0,
    "transcribe": 6.0,
    "analyze": 2.0,
    "clips": 4.0,
    "subtitles": 0.5,
}


# The earlier stages whose output files a stage reads (the stage task brings them into the
# stage's work dir first). The transcribe stage reads none: the Transcriber gets a store key.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "fetch": (),
    "audio": ("fetch",),
    "transcribe": (),
    "analyze": ("transcribe",),
    "clips": ("fetch", "transcribe", "analyze"),
    "subtitles": ("fetch",),  # and the transcript's SRT file, below
}
SRT_FILE = "transcript.srt"


def srt_file(checkpoints: dict[str, dict[str, Any]]) -> str:
    """The transcript's SRT file name (checkpoints from before it was recorded: the default)."""
    return str(checkpoints.get("transcribe", {}).get("srt_file", SRT_FILE))


def input_files(stage: str, checkpoints: dict[str, dict[str, Any]]) -> list[str]:
    """The file names `stage` needs from the store, given the checkpoints so far."""
    names = [
        str(checkpoints[s]["file"])
        for s in STAGE_INPUTS.get(stage, ())
        if "file" in checkpoints.get(s, {})
    ]
    if stage == "subtitles" and "transcribe" in checkpoints:
        names.append(srt_file(checkpoints))
    return names


def chain_for(job_type: str) -> tuple[str, ...]:
    return STAGE_CHAINS[job_type]


def overall_progress(
    chain: tuple[str, ...], done: set[str], stage: str | None, fraction: float
) -> float:
    """The job's 0-100 progress from its completed stages and the running stage's fraction."""
    total = sum(STAGE_WEIGHTS[s] for s in chain)
    achieved = sum(STAGE_WEIGHTS[s] for s in chain if s in done)
    if stage is not None and stage not in done:
        achieved += STAGE_WEIGHTS[stage] * min(max(fraction, 0.0), 1.0)
    return round(100.0 * achieved / total, 2)


def _fetch(inp: StageInput, progress: ProgressCallback, cancel: CancelToken) -> StageOutput:
    if inp.local_source is not None:
        source = Path(inp.local_source)
        result = fetch_local(
            source, inp.url, Path(inp.work_dir), inp.fetch_options, progress, cancel
        )
    else:
        result = fetch(inp.url, Path(inp.work_dir), inp.fetch_options, progress, cancel)
    path = Path(result.path)
    _check_clip_source(inp, path)
    return StageOutput(
        checkpoint={"file": path.name, "title": result.title, "duration_s": result.duration_s},
        artifacts=[
            ArtifactSpec(
                kind="source",
                path=str(path),
                format=path.suffix.lstrip(".") or "bin",
                duration_s=result.duration_s,
                metadata={"extractor": result.extractor, "webpage_url": result.webpage_url},
            )
        ],
        job_fields={"video_title": result.title, "duration": result.duration_s},
    )


def _check_clip_source(inp: StageInput, path: Path) -> None:
    """Clip jobs fail here, before transcribing, when the video cannot give the clips asked."""
    if "clips" not in STAGE_CHAINS.get(inp.job_type, ()):
        return
    info = probe(path)
    if not info.has_video:
        raise MediaError(
            "clips need a video track, and this source has none (audio only)",
            code="no_video_stream",
        )
    check_clip_options(inp.options.clips, info.duration_s)


def _subtitles(inp: StageInput, progress: ProgressCallback, cancel: CancelToken) -> StageOutput:
    source = checkpoint_file(inp, "fetch")
    srt = Path(inp.work_dir) / srt_file(inp.checkpoints)
    if not srt.is_file():
        raise MediaError("the transcript's SRT file is missing from the artifact store")
    if not srt.read_text(encoding="utf-8").strip():
        return StageOutput(checkpoint={"note": "no speech was found: nothing to subtitle"})
    # the text's language: the one asked for (decoded in), else the one detected
    detected = inp.checkpoints.get("transcribe", {}).get("language")
    language = inp.options.transcribe.language or detected
    result = mux_subtitles(source, srt, Path(inp.work_dir), language, progress, cancel)
    return StageOutput(
        checkpoint={"file": Path(result.path).name},
        artifacts=[
            ArtifactSpec(
                kind="video_subtitled",
                path=result.path,
                format=result.container,
                duration_s=result.duration_s,
                metadata={"subtitle_language": language},
            )
        ],
    )


def _audio(inp: StageInput, progress: ProgressCallback, cancel: CancelToken) -> StageOutput:
    source = checkpoint_file(inp, "fetch")
    opts = inp.options.audio
    result = extract_audio(source, Path(inp.work_dir), opts, progress, cancel)
    path = Path(result.path)
    meta = {
        "sample_rate_hz": result.sample_rate_hz,
        "channels": result.channels,
        "bitrate_kbps": result.bitrate_kbps,
        "quality": opts.audio_quality,
    }
    return StageOutput(
        checkpoint={"file": path.name, "duration_s": result.duration_s, **meta},
        artifacts=[
            ArtifactSpec(
                kind="audio",
                path=str(path),
                format=result.audio_format,
                duration_s=result.duration_s,
                metadata=meta,
            )
        ],
    )


def _transcribe(
    inp: StageInput, progress: ProgressCallback, cancel: CancelToken, models: ModelServices
) -> StageOutput:
    result = models.transcribe(
        checkpoint_key(inp, "audio"), inp.options.transcribe, progress, cancel
    )
    audio_bytes = int(result.pop("audio_bytes_read", 0))  # what the model replica downloaded
    transcript = TranscriptResult.from_dict(result)
    files = write_subtitles(transcript, Path(inp.work_dir))
    formats = {"json": "transcript_json", "srt": "subtitles_srt", "vtt": "subtitles_vtt"}
    artifacts = [
        ArtifactSpec(
            kind=formats.get(fmt, "transcript_txt"),
            path=str(path),
            format=fmt,
            duration_s=transcript.duration_s,
            metadata={"language": transcript.language, "segments": len(transcript.segments)},
        )
        for fmt, path in sorted(files.items())
    ]
    return StageOutput(
        checkpoint={
            "file": files["json"].name,
            "srt_file": files["srt"].name,
            "language": transcript.language,
            "language_probability": transcript.language_probability,
        },
        artifacts=artifacts,
        job_fields={
            "transcript": result["text"],
            "segments": result["segments"],
            "speakers": result.get("speakers"),
            "language": transcript.language,
            "language_probability": transcript.language_probability,
        },
        bytes_in=audio_bytes,
    )


def _analyze(
    inp: StageInput, progress: ProgressCallback, cancel: CancelToken, models: ModelServices
) -> StageOutput:
    transcript = json.loads(checkpoint_file(inp, "transcribe").read_text(encoding="utf-8"))
    language = inp.checkpoints.get("transcribe", {}).get("language")
    result = models.analyze(
        transcript.get("text", ""),
        transcript.get("segments", []),
        inp.options.analyze,
        language,
        progress,
        cancel,
    )
    result = with_speaker_figures(result, transcript.get("speakers"))
    path = Path(inp.work_dir) / "analysis.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    checkpoint = {"file": path.name}
    skipped = [str(skip["part"]) for skip in result.get("skipped") or ()]
    if skipped:  # the stage's event says so; `skipped` in the result says why
        checkpoint["note"] = (
            f"skipped {', '.join(skipped)}: their models do not handle the transcript's "
            f"language ({result.get('language')}); see analysis_results.skipped"
        )
    return StageOutput(
        checkpoint=checkpoint,
        artifacts=[ArtifactSpec(kind="analysis_json", path=str(path), format="json")],
        job_fields={"analysis_results": result},
    )


def with_speaker_figures(
    analysis: dict[str, Any], speakers: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """`analysis_results.speakers` with the diarization's own talk time, turns and words (the
    job's `speakers`: time inside the turns it found), so that both say the same; the
    analysis' segment-based figures stay for a speaker the diarization does not list."""
    if not speakers or not analysis.get("speakers"):
        return analysis
    figures = {str(s["speaker"]): s for s in speakers}
    total = sum(float(s["talk_time"]) for s in speakers) or 1.0
    merged = []
    for entry in analysis["speakers"]:
        own = figures.get(str(entry.get("speaker")))
        if own is not None:
            entry = {
                **entry,
                **{key: own[key] for key in ("talk_time", "turns", "words")},
                "talk_share": round(float(own["talk_time"]) / total, 4),
            }
        merged.append(entry)
    return {**analysis, "speakers": merged}


StageFn = Callable[[StageInput, ProgressCallback, CancelToken], StageOutput]
ModelStageFn = Callable[[StageInput, ProgressCallback, CancelToken, ModelServices], StageOutput]

STAGE_FUNCTIONS: dict[str, StageFn] = {
    "fetch": _fetch,
    "audio": _audio,
    "clips": run_clips,
    "subtitles": _subtitles,
}
MODEL_STAGE_FUNCTIONS: dict[str, ModelStageFn] = {"transcribe": _transcribe, "analyze": _analyze}


def run_stage(
    name: str,
    inp: StageInput,
    progress: ProgressCallback,
    cancel: CancelToken,
    models: ModelServices | None = None,
) -> StageOutput:
    """Run one stage. Stages not in this build fail the job with a clear reason."""
    Path(inp.work_dir).mkdir(parents=True, exist_ok=True)
    fn = STAGE_FUNCTIONS.get(name)
    if fn is not None:
        return fn(inp, progress, cancel)
    model_fn = MODEL_STAGE_FUNCTIONS.get(name)
    if model_fn is None:
        raise PipelineError(
            f"the {name!r} stage is not available in this build of vpa",
            code="stage_unavailable",
        )
    if models is None:
        raise PipelineError(
            "the model services are not connected yet; the job will be retried",
            code="models_unavailable",
            retryable=True,
        )
    return model_fn(inp, progress, cancel, models)
