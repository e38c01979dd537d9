"""The clip stage's own logic: option checks against the video, per-clip subtitles, ids."""

from __future__ import annotations

import pytest

from pipeline.clips.select import ClipPlan
from pipeline.clips.stage import (
    _no_clips_reason,
    artifact_id,
    check_clip_options,
    clip_segments,
    frame_range,
)
from pipeline.errors import PipelineError
from pipeline.media.probe import MediaInfo
from pipeline.media.soft_subtitles import container_for
from pipeline.options import ClipOptions, ClipRange
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.subtitles import to_srt


def _segment(i: int, start: float, words: list[tuple[float, float, str]]) -> Segment:
    return Segment(
        id=i,
        start_s=start,
        end_s=words[-1][1],
        text="".join(w for _, _, w in words),
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        compression_ratio=1.2,
        words=tuple(Word(a, b, w, 0.9) for a, b, w in words),
    )


SEGMENTS = [
    _segment(0, 0.5, [(0.5, 1.0, " Hello"), (1.1, 1.6, " there.")]),
    _segment(1, 2.0, [(2.0, 2.5, " The"), (2.6, 3.2, " budget"), (3.3, 4.0, " grew.")]),
    _segment(2, 5.0, [(5.0, 5.5, " Good"), (5.6, 6.0, " news.")]),
]


def test_clip_segments_are_relative_and_trimmed() -> None:
    inside = clip_segments(SEGMENTS, 1.9, 6.1)
    assert [s.id for s in inside] == [0, 1]
    assert inside[0].start_s == pytest.approx(0.1) and inside[0].text == " The budget grew."
    assert inside[1].end_s == pytest.approx(4.1)
    assert all(0 <= w.start_s < w.end_s <= 4.2 for s in inside for w in s.words)
    partial = clip_segments(SEGMENTS, 2.55, 3.25)  # cuts through the segment, keeps its word
    assert [w.word for w in partial[0].words] == [" budget"]
    assert partial[0].start_s == 0 and partial[0].end_s == pytest.approx(0.7)
    srt = to_srt(inside)
    assert srt.startswith("1\n00:00:00,100 --> ") and "budget" in srt
    assert clip_segments(SEGMENTS, 10, 20) == []


def test_check_clip_options_against_the_duration() -> None:
    check_clip_options(ClipOptions(clip_duration_s=20), 30.0)
    check_clip_options(ClipOptions(clip_duration_s=20), None)  # unknown length: checked later
    with pytest.raises(PipelineError, match=r"options.clip_duration \(45 s\) is longer") as err:
        check_clip_options(ClipOptions(clip_duration_s=45), 30.0)
    assert err.value.code == "invalid_options" and not err.value.retryable
    check_clip_options(ClipOptions(clip_duration_s=45, ranges=(ClipRange(0, 30.02),)), 30.0)
    with pytest.raises(PipelineError, match=r"segments\[1\]: end 31 s is past"):
        check_clip_options(ClipOptions(ranges=(ClipRange(0, 3), ClipRange(5, 31))), 30)
    with pytest.raises(PipelineError, match=r"segments\[0\]: start 30 s is past"):
        check_clip_options(ClipOptions(ranges=(ClipRange(30, 31),)), 30)


def test_artifact_ids_are_stable_per_job_and_file() -> None:
    a = artifact_id("job-1", "clip_01.mp4")
    assert a == artifact_id("job-1", "clip_01.mp4")
    assert a != artifact_id("job-2", "clip_01.mp4") != artifact_id("job-1", "clip_02.mp4")


def _info(fmt: str, video: str | None, audio: str | None) -> MediaInfo:
    return MediaInfo(
        format_name=fmt,
        duration_s=1.0,
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=video,
        audio_codec=audio,
    )


def test_subtitled_video_container() -> None:
    assert container_for(_info("mov,mp4,m4a,3gp,3g2,mj2", "h264", "aac")) == "mp4"
    assert container_for(_info("mov,mp4,m4a,3gp,3g2,mj2", "h264", None)) == "mp4"
    assert container_for(_info("mov,mp4,m4a,3gp,3g2,mj2", "h264", "pcm_s16le")) == "mkv"
    assert container_for(_info("matroska,webm", "vp9", "opus")) == "mkv"


def _plan(start: float, end: float, source: str) -> ClipPlan:
    return ClipPlan(start, end, "t", 0.5, "r", "text", source, {}, [])  # type: ignore[arg-type]


def test_frame_range_widens_chosen_clips_and_rounds_custom_ones() -> None:
    assert frame_range(_plan(1.01, 8.699, "window"), 25.0, 30.0) == (1.0, 8.72)
    assert frame_range(_plan(1.01, 8.699, "custom"), 25.0, 30.0) == (1.0, 8.68)
    assert frame_range(_plan(1.0, 8.72, "chapter"), 25.0, 30.0) == (1.0, 8.72)  # on frames
    assert frame_range(_plan(20.0, 29.99, "window"), 25.0, 29.99) == (20.0, 29.96)


def test_frame_range_never_moves_into_a_word() -> None:
    words = [(8.18, 8.7), (8.98, 9.38)]
    # 8.98 widens to 9.0, inside the next word: the boundary before it (8.96) is used
    assert frame_range(_plan(0.0, 8.98, "window"), 25.0, 30.0, words) == (0.0, 8.96)
    assert frame_range(_plan(8.17, 9.38, "window"), 25.0, 30.0, words) == (8.16, 9.4)
    assert frame_range(_plan(8.19, 9.38, "window"), 25.0, 30.0, [(8.0, 8.19), *words[1:]]) == (
        8.2,
        9.4,
    )


def test_no_clips_reason() -> None:
    empty = TranscriptResult("", (), "en", 1.0, 10.0)
    assert "no speech" in _no_clips_reason(empty, ClipOptions())
    spoken = TranscriptResult("Hello there.", tuple(SEGMENTS), "en", 1.0, 10.0)
    assert "options.min_confidence (0.9)" in _no_clips_reason(
        spoken, ClipOptions(min_confidence=0.9)
    )
