"""The `clips` stage: choose clips (or take the caller's ranges), cut each one with its
thumbnail and subtitles, and describe them in the job's `generated_clips`.

Pure pipeline code like the other stages: paths and options in, a `StageOutput` out. The
choosing lives in `pipeline.clips.select`, the cutting in `pipeline.clips.cutting`.

Each clip gives three artifacts, named `clip_NN.<fmt>`, `clip_NN.jpg` and `clip_NN.srt`,
with ids fixed before they are registered so that `generated_clips` can point at them. They
are made in a staging directory and moved into the job's directory only when every clip is
done: a cancelled, failed or killed attempt leaves no clip behind.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.clips.cutting import (
    CutOptions,
    CutResult,
    cut_clip,
    exact_fps,
    keyframe_times,
    snap_to_frames,
)
from pipeline.clips.select import (
    ClipPlan,
    SelectOptions,
    checked_range,
    custom_clips,
    select_clips,
)
from pipeline.clips.thumbnails import make_thumbnail
from pipeline.errors import PipelineError, StageCancelled
from pipeline.media.probe import MediaInfo, probe
from pipeline.options import ClipOptions
from pipeline.results import Segment, TranscriptResult
from pipeline.stage_io import ArtifactSpec, StageInput, StageOutput, checkpoint_file
from pipeline.transcription.subtitles import to_srt
from pipeline.types import CancelToken, ProgressCallback

DURATION_TOLERANCE_S = 0.05
STAGING_DIR = ".clips-partial"
THUMBNAIL_AT = 0.3  # share of the clip: past the first words, before the end
_ARTIFACT_NS = uuid.UUID("6f1c0b7e-3d47-4c35-9a55-0c0e9e2ad2d4")


def invalid_option(message: str) -> PipelineError:
    return PipelineError(message, code="invalid_options", retryable=False)


def check_clip_options(options: ClipOptions, duration_s: float | None) -> None:
    """Refuse clip options the video cannot satisfy, as soon as its duration is known."""
    if duration_s is None or duration_s <= 0:
        return
    if options.ranges:
        for i, clip_range in enumerate(options.ranges):
            checked_range(i, clip_range, duration_s)
        return
    clip_duration = options.clip_duration_s
    if clip_duration > duration_s + DURATION_TOLERANCE_S:
        raise invalid_option(
            f"options.clip_duration ({clip_duration:g} s) is longer than the video "
            f"({duration_s:.2f} s)"
        )


def artifact_id(job_id: str, filename: str) -> str:
    """A stable id per job and file: a retry re-registers the same ids."""
    return str(uuid.uuid5(_ARTIFACT_NS, f"{job_id}/{filename}"))


WORD_EDGE_S = 0.005  # a boundary this close to a word's edge is not inside it


def _inside_word(t: float, words: Sequence[tuple[float, float]]) -> bool:
    i = bisect.bisect_right(words, (t, math.inf)) - 1
    return i >= 0 and words[i][0] + WORD_EDGE_S < t < words[i][1] - WORD_EDGE_S


def frame_range(
    plan: ClipPlan,
    fps: float | None,
    duration_s: float | None,
    words: Sequence[tuple[float, float]] = (),
) -> tuple[float, float]:
    """The frames to cut. The caller's own ranges snap to the nearest frame; a chosen clip's
    ends go to the frame boundary outside it, or inside where that would cut into the next
    word (`words`: sorted (start, end) of every spoken word)."""
    rate = exact_fps(fps)
    if plan.source == "custom" or rate is None:
        return snap_to_frames(plan.start, plan.end, fps, duration_s)
    starts = [
        math.floor(plan.start * rate + 1e-6) / rate,
        math.ceil(plan.start * rate - 1e-6) / rate,
    ]
    ends = [math.ceil(plan.end * rate - 1e-6) / rate, math.floor(plan.end * rate + 1e-6) / rate]
    start = next((t for t in starts if not _inside_word(t, words)), starts[0])
    end = next((t for t in ends if not _inside_word(t, words)), ends[0])
    return snap_to_frames(start, end, fps, duration_s)


def clip_segments(segments: Sequence[Segment], start: float, end: float) -> list[Segment]:
    """The segments (and words) inside [start, end], with times relative to `start`."""
    inside: list[Segment] = []
    for seg in segments:
        if seg.end_s <= start or seg.start_s >= end:
            continue
        words = tuple(
            replace(w, start_s=max(w.start_s, start) - start, end_s=min(w.end_s, end) - start)
            for w in seg.words
            if w.end_s > start and w.start_s < end
        )
        if seg.words and not words:
            continue
        inside.append(
            replace(
                seg,
                id=len(inside),
                start_s=max(seg.start_s, start) - start,
                end_s=min(seg.end_s, end) - start,
                text="".join(w.word for w in words) if words else seg.text,
                words=words,
            )
        )
    return inside


def _plans(inp: StageInput, transcript: TranscriptResult, analysis: dict[str, Any],
           duration_s: float | None) -> list[ClipPlan]:  # fmt: skip
    segments = [s.to_dict() for s in transcript.segments]
    options = inp.options.clips
    if options.ranges:
        return custom_clips(options.ranges, segments, analysis, duration_s)
    opts = SelectOptions(
        clip_duration=options.clip_duration_s,
        overlap_duration=options.overlap_duration_s,
        max_clips=options.max_clips,
        min_confidence=options.min_confidence,
    )
    return select_clips(segments, analysis, opts, duration_s)


def _no_clips_reason(transcript: TranscriptResult, options: ClipOptions) -> str:
    if not any(seg.text.strip() for seg in transcript.segments):
        return "no speech to choose clips from; options.segments cuts chosen ranges anyway"
    return f"no part of the video reached options.min_confidence ({options.min_confidence:g})"


def _cut_options(options: ClipOptions, subtitles: Path | None) -> CutOptions:
    return CutOptions(
        output_format=options.output_format,
        resolution=options.resolution,
        aspect_ratio=options.aspect_ratio,
        aspect_mode=options.aspect_mode,
        subtitles_path=str(subtitles) if subtitles is not None else None,
        method="auto" if options.fast_cut else "reencode",
    )


def _clip_entry(index: int, plan: ClipPlan, cut: CutResult, ids: dict[str, str]) -> dict[str, Any]:
    return {
        "index": index,
        "start": round(cut.start_s, 3),
        "end": round(cut.end_s, 3),
        "duration": round(cut.duration_s, 3),
        "title": plan.title,
        "score": round(plan.score, 4),
        "reason": plan.reason,
        "text": plan.text,
        "source": plan.source,
        "keywords": list(plan.keywords),
        "score_components": {k: round(v, 4) for k, v in plan.components.items()},
        "width": cut.width,
        "height": cut.height,
        "format": Path(cut.path).suffix.lstrip("."),
        "cut_method": cut.method,
        "artifacts": ids,  # the API adds the download links (video_url, ...) from these
        **({"speakers": plan.speakers} if plan.speakers is not None else {}),
    }


@dataclass(frozen=True)
class _ClipContext:
    inp: StageInput
    source: Path
    info: MediaInfo
    duration_s: float | None
    transcript: TranscriptResult
    words: list[tuple[float, float]]
    keyframes: list[float]
    count: int
    progress: ProgressCallback
    cancel: CancelToken


def _make_clip(
    ctx: _ClipContext, n: int, plan: ClipPlan, staging: Path
) -> tuple[dict[str, Any], list[ArtifactSpec], list[Any]]:
    """Cut clip `n` with its subtitles and thumbnail into `staging`; describe the files by
    the names they will have in the job's directory; and how it was cut, in how long
    ([method, seconds], for the metrics)."""
    if ctx.cancel.cancelled:
        raise StageCancelled("the job was cancelled")
    fmt = ctx.inp.options.clips.output_format
    names = {"video": f"clip_{n:02d}.{fmt}", "thumbnail": f"clip_{n:02d}.jpg",
             "subtitles": f"clip_{n:02d}.srt"}  # fmt: skip
    start, end = frame_range(plan, ctx.info.fps, ctx.duration_s, ctx.words)
    srt = to_srt(clip_segments(ctx.transcript.segments, start, end))
    (staging / names["subtitles"]).write_text(srt, encoding="utf-8")
    burn = staging / names["subtitles"] if ctx.inp.options.clips.burn_captions and srt else None

    def clip_progress(fraction: float, message: str) -> None:
        share = 0.05 + 0.95 * (n - 1 + min(max(fraction, 0.0), 1.0)) / ctx.count
        ctx.progress(share, f"clip {n}/{ctx.count}: {message}")

    started = time.monotonic()
    cut = cut_clip(
        ctx.source,
        start,
        end,
        staging / names["video"],
        _cut_options(ctx.inp.options.clips, burn),
        clip_progress,
        ctx.cancel,
        info=ctx.info,
        keyframes=ctx.keyframes,
    )
    cut_s = time.monotonic() - started
    at = cut.duration_s * THUMBNAIL_AT
    make_thumbnail(staging / names["video"], staging / names["thumbnail"], at, cancel=ctx.cancel)
    clip_progress(1.0, "done")
    ids = {kind: artifact_id(ctx.inp.job_id, name) for kind, name in names.items()}
    final = {kind: str(Path(ctx.inp.work_dir) / name) for kind, name in names.items()}
    meta = {"clip_index": n, "start": cut.start_s, "end": cut.end_s, "title": plan.title}
    specs = [
        ArtifactSpec("clip", final["video"], fmt, cut.duration_s,
                     {**meta, "width": cut.width, "height": cut.height}, ids["video"]),
        ArtifactSpec("clip_thumbnail", final["thumbnail"], "jpg", None, meta, ids["thumbnail"]),
        ArtifactSpec("clip_subtitles", final["subtitles"], "srt", cut.duration_s, meta,
                     ids["subtitles"]),
    ]  # fmt: skip
    entry = _clip_entry(n, plan, cut, ids)
    return entry, specs, [cut.method, round(cut_s, 4)]


def run_clips(inp: StageInput, progress: ProgressCallback, cancel: CancelToken) -> StageOutput:
    source = checkpoint_file(inp, "fetch")
    transcript = TranscriptResult.from_dict(
        json.loads(checkpoint_file(inp, "transcribe").read_text(encoding="utf-8"))
    )
    analysis: dict[str, Any] = {}
    if "analyze" in inp.checkpoints:
        analysis = json.loads(checkpoint_file(inp, "analyze").read_text(encoding="utf-8"))
    info = probe(source)  # the fetch stage refused sources without video
    duration = info.duration_s or transcript.duration_s
    check_clip_options(inp.options.clips, duration)  # again: the fetch may not have known it
    plans = _plans(inp, transcript, analysis, duration)
    progress(0.05, f"{len(plans)} clips chosen")
    if not plans:
        return StageOutput(
            checkpoint={"clips": 0, "note": _no_clips_reason(transcript, inp.options.clips)},
            job_fields={"generated_clips": []},
        )
    ctx = _ClipContext(
        inp=inp,
        source=source,
        info=info,
        duration_s=duration,
        transcript=transcript,
        words=sorted((w.start_s, w.end_s) for seg in transcript.segments for w in seg.words),
        keyframes=keyframe_times(source, cancel),
        count=len(plans),
        progress=progress,
        cancel=cancel,
    )
    work = Path(inp.work_dir)
    staging = work / STAGING_DIR  # a killed attempt leaves nothing half-written in the store
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    artifacts: list[ArtifactSpec] = []
    clips: list[dict[str, Any]] = []
    cuts: list[list[Any]] = []
    try:
        for n, plan in enumerate(plans, start=1):
            entry, specs, cut = _make_clip(ctx, n, plan, staging)
            clips.append(entry)
            artifacts += specs
            cuts.append(cut)
        for path in staging.iterdir():
            os.replace(path, work / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return StageOutput(
        checkpoint={"clips": len(clips)},
        artifacts=artifacts,
        job_fields={"generated_clips": clips},
        figures={"clip_cut": cuts},
    )
