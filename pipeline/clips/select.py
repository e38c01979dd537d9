"""Choose clips from a transcript and its analysis: where to cut, how good each cut is.

Plain code, no media: the clips stage cuts what `select_clips` or `custom_clips` plan.

- Pieces (`clip_transcript.transcript_pieces`): every segment split after each word ending a
  sentence (. ? !), by word times; a segment without words is one piece. A clip starts at
  the start of a piece and ends at the end of one, so it never cuts a word, and takes up to
  `pad_s` of the silence at each end: never into a neighbouring word, below 0 or past the
  end of the media.
- Candidates: every timed chapter of the analysis, and windows of about `clip_duration`
  tiling the speech: each starts at the first piece that overlaps the window before by at
  most `overlap_duration` (a step of `clip_duration - overlap_duration`), plus the same
  tiling begun half a step later and one window ending with the speech. A window takes the
  pieces whose length is nearest `clip_duration` within 60-140% of it, preferring whole
  sentences. A chapter longer than 1.5 x `clip_duration` gives its best window instead.
  Candidates shorter than max(40% of `clip_duration`, 3 s) are dropped; speech no longer
  than `clip_duration` in all is a single candidate covering all of it.
- Score: `pipeline.clips.score` (a weighted sum of components in [0, 1]).
- Speakers (a diarized transcript): `pipeline.clips.turns`: whole turns as candidates,
  windows snapped to them, a `speaker_turn` score component, each clip's `speakers`.
- Selection: best score first, at least `min_confidence`, skipping a candidate that overlaps
  a kept clip by more than `overlap_duration`, at most `max_clips`; returned by start time.
- Title: the chapter's title for a chapter candidate or a clip mostly inside one chapter,
  else its 1-3 most prominent keywords, else its opening words; no two clips share one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pipeline.clips.score import chapter_share, keyword_hits, score_clip
from pipeline.clips.titles import clip_title
from pipeline.clips.transcript import (
    Sentence,
    Track,
    ends_sentence,
    sentence_boundaries,
    transcript_pieces,
)
from pipeline.clips.turns import heard, inside, turn_windows, with_turns
from pipeline.errors import PipelineError
from pipeline.options import ClipRange

__all__ = [
    "ClipPlan",
    "SelectOptions",
    "Sentence",
    "candidates",
    "custom_clips",
    "score_clip",
    "select_clips",
    "sentence_boundaries",
]

Source = Literal["chapter", "window", "custom"]

MIN_LENGTH_SHARE = 0.6  # a window's length, as a share of clip_duration: at least
MAX_LENGTH_SHARE = 1.4  # ... and at most
CHAPTER_MAX_SHARE = 1.5  # a longer chapter gives its best window
DROP_SHARE = 0.4  # candidates shorter than this share of clip_duration are dropped ...
DROP_MIN_S = 3.0  # ... and always those under 3 s
UNCUT_SENTENCE_COST = 0.25  # a window may stray 25% further from clip_duration to stay whole
MAX_DRIFT_SHARE = 0.25  # ... or start this share of clip_duration late to start a sentence
MIN_STEP_SHARE = 0.25  # windows start at least this share of clip_duration apart
MOSTLY_IN_CHAPTER = 0.6  # a window this much inside a chapter takes the chapter's title
RANGE_TOLERANCE_S = 0.05  # custom ranges this far outside the media are clamped, not refused


@dataclass(frozen=True)
class SelectOptions:
    clip_duration: float = 30.0  # target length, seconds
    overlap_duration: float = 2.0  # kept clips overlap by at most this; windows step by
    # clip_duration - overlap_duration
    max_clips: int = 10
    min_confidence: float = 0.5  # minimum highlight score
    pad_s: float = 0.3  # silence kept at each end where the audio has a gap


@dataclass(frozen=True)
class ClipPlan:
    start: float
    end: float
    title: str
    score: float  # highlight score in [0, 1]
    reason: str  # which components drove the score, for people
    text: str  # the transcript inside the clip
    source: Source
    components: dict[str, float]  # each score component in [0, 1]
    keywords: list[str]  # analysis keywords found in the clip, most prominent first
    speakers: list[str] | None = None  # heard in the clip, in order; None: not diarized

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.speakers is None:
            del data["speakers"]
        return data


@dataclass(frozen=True)
class _Candidate:
    first: int  # index of the first piece
    last: int  # index of the last piece (inclusive)
    source: Source
    chapter: int | None = None


def candidates(
    segments: Sequence[Mapping[str, Any]],
    analysis: Mapping[str, Any],
    options: SelectOptions,
    duration_s: float | None,
) -> list[tuple[float, float, str]]:
    """(start, end, source) of every candidate clip, padded as it would be cut, by start."""
    _check(options)
    track = Track(transcript_pieces(segments), duration_s, options.pad_s)
    found = _candidates(track, analysis or {}, options)
    return sorted((*track.bounds(c.first, c.last), c.source) for c in found)


def select_clips(
    segments: Sequence[Mapping[str, Any]],
    analysis: Mapping[str, Any],
    options: SelectOptions,
    duration_s: float | None,
) -> list[ClipPlan]:
    """The best clips of the transcript, by start time. See the module docstring."""
    _check(options)
    analysis = analysis or {}
    track = Track(transcript_pieces(segments), duration_s, options.pad_s)
    if not track.pieces or options.max_clips <= 0:
        return []
    scored = []
    for cand in _candidates(track, analysis, options):
        start, end = track.bounds(cand.first, cand.last)
        rated = _rated(track, start, end, analysis, cand.first, cand.last)
        if rated[0] >= options.min_confidence:
            scored.append((rated, start, end, cand))
    scored.sort(key=lambda s: (-s[0][0], s[3].source != "chapter", s[1]))

    kept: list[ClipPlan] = []
    titles: set[str] = set()
    allowed = options.overlap_duration + 1e-6
    for (score, components, reason), start, end, cand in scored:
        if len(kept) >= options.max_clips:
            break
        if any(_overlap(start, end, k.start, k.end) > allowed for k in kept):
            continue
        text = " ".join(p.text for p in track.pieces[cand.first : cand.last + 1])
        keywords = [k for k, _ in keyword_hits(text, analysis)]
        chapter = cand.chapter if cand.source == "chapter" else _main_chapter(start, end, analysis)
        title = clip_title(text, keywords, analysis, chapter, start, end, titles)
        titles.add(title)
        speakers = heard(track, cand.first, cand.last)
        kept.append(ClipPlan(start, end, title, score, reason, text, cand.source, components,
                             keywords, speakers))  # fmt: skip
    return sorted(kept, key=lambda c: (c.start, c.end))


def custom_clips(
    ranges: Sequence[ClipRange],
    segments: Sequence[Mapping[str, Any]],
    analysis: Mapping[str, Any],
    duration_s: float | None,
) -> list[ClipPlan]:
    """Exactly the ranges asked for (`options.segments`), in the
    order given, scored from their content. Raises PipelineError(code="invalid_options")
    naming the first bad range. Ends are checked against `duration_s` when it is known."""
    analysis = analysis or {}
    track = Track(transcript_pieces(segments), duration_s, 0.0)
    checked = [checked_range(n, r, duration_s) for n, r in enumerate(ranges)]
    plans: list[ClipPlan] = []
    titles: set[str] = set()
    for start, end, given in checked:
        score, components, reason = _rated(track, start, end, analysis)
        text = track.text_between(start, end)
        keywords = [k for k, _ in keyword_hits(text, analysis)]
        chapter = _main_chapter(start, end, analysis)
        title = given or clip_title(text, keywords, analysis, chapter, start, end, titles)
        titles.add(title)
        speakers = heard(track, *inside(track, start, end))
        plans.append(ClipPlan(start, end, title, score, reason, text, "custom", components,
                              keywords, speakers))  # fmt: skip
    return plans


def _candidates(
    track: Track, analysis: Mapping[str, Any], options: SelectOptions
) -> list[_Candidate]:
    if not track.pieces:
        return []
    target = options.clip_duration
    if track.speech_end - track.speech_start <= target:
        return [_Candidate(0, len(track.pieces) - 1, "window")]
    shortest = max(DROP_SHARE * target, min(DROP_MIN_S, target))
    found: dict[tuple[int, int], _Candidate] = {}
    for k, chapter in enumerate(analysis.get("chapters") or []):
        span = _chapter_pieces(track, chapter)
        if span is None:
            continue
        first, last = span
        if track.length(first, last) > CHAPTER_MAX_SHARE * target:
            windows = _fitting(track, _windows(track, first, last, options), target)
            first, last = max(windows, key=lambda w: (_score(track, w, analysis), -w[0]))
        if track.length(first, last) >= shortest:
            found[(first, last)] = _Candidate(first, last, "chapter", k)
    windows = _fitting(track, _windows(track, 0, len(track.pieces) - 1, options), target)
    limits = (MIN_LENGTH_SHARE * target, MAX_LENGTH_SHARE * target)
    for first, last in turn_windows(track, windows, *limits):  # diarized: whole turns
        if track.length(first, last) >= shortest and (first, last) not in found:
            found[(first, last)] = _Candidate(first, last, "window")
    return sorted(found.values(), key=lambda c: (c.first, c.last))


def _windows(track: Track, lo: int, hi: int, options: SelectOptions) -> list[tuple[int, int]]:
    """Windows of about `clip_duration` over pieces lo..hi: a tiling stepping by
    `clip_duration - overlap_duration`, the same begun half a step later (so a passage
    that straddles two windows gets one of its own), and one ending with the last piece."""
    target = options.clip_duration
    half_step = max(target - options.overlap_duration, MIN_STEP_SHARE * target) / 2
    shifted = bisect.bisect_left(track.starts, track.pieces[lo].start + half_step, lo, hi + 1)
    windows = _tiling(track, lo, hi, lo, options) + _tiling(track, lo, hi, shifted, options)
    finish = max(p.end for p in track.pieces[lo : hi + 1])
    earliest = bisect.bisect_left(track.starts, finish - MAX_LENGTH_SHARE * target, lo, hi + 1)
    windows.append(_window(track, range(min(earliest, hi), hi + 1), hi, target, last=hi))
    return list(dict.fromkeys(windows))


def _fitting(track: Track, windows: list[tuple[int, int]], target: float) -> list[tuple[int, int]]:
    """Windows at least 60% of `target` long (the tail of a tiling is often shorter), or
    all of them where none is, as in sparse speech."""
    fitting = [w for w in windows if track.length(*w) >= MIN_LENGTH_SHARE * target]
    return fitting or windows


def _tiling(
    track: Track, lo: int, hi: int, first: int, options: SelectOptions
) -> list[tuple[int, int]]:
    """Windows from piece `first` on, each starting at the first piece that overlaps the
    one before (as cut, pads included) by at most `overlap_duration`."""
    target = options.clip_duration
    windows: list[tuple[int, int]] = []
    while first <= hi:
        reach = track.pieces[first].start + MAX_DRIFT_SHARE * target
        firsts = range(first, bisect.bisect_right(track.starts, reach, first, hi + 1))
        a, b = _window(track, firsts or range(first, first + 1), hi, target)
        windows.append((a, b))
        if b >= hi:
            break
        end = track.bounds(a, b)[1]
        after = track.pieces[a].start + MIN_STEP_SHARE * target
        first = a + 1
        while first <= hi and (
            end - track.bounds(first, first)[0] > options.overlap_duration + 1e-6
            or track.pieces[first].start < after
        ):
            first += 1
    return windows


def _window(
    track: Track, firsts: range, hi: int, target: float, last: int | None = None
) -> tuple[int, int]:
    """The window starting at one of `firsts` (or ending at `last`) whose length is nearest
    `target`, preferring whole sentences and an early start."""
    anchor = track.pieces[firsts[0]].start
    best: tuple[float, int, int] | None = None
    for first in firsts:
        a = track.pieces[first].start
        opens = first == 0 or ends_sentence(track.pieces[first - 1].text)
        drift = 0.0 if last is not None else (a - anchor) / target
        base = UNCUT_SENTENCE_COST * (not opens) + drift
        for end in range(first, hi + 1) if last is None else (last,):
            piece = track.pieces[end]
            if piece.start - a > MAX_LENGTH_SHARE * target:
                break
            length = piece.end - a
            off = abs(length - target) / target
            out_of_range = not MIN_LENGTH_SHARE * target <= length <= MAX_LENGTH_SHARE * target
            cost = base + off + out_of_range + UNCUT_SENTENCE_COST * (not ends_sentence(piece.text))
            if best is None or cost < best[0]:
                best = (cost, first, end)
    if best is None:  # a single piece longer than the longest window
        return firsts[0], firsts[0] if last is None else last
    return best[1], best[2]


def _chapter_pieces(track: Track, chapter: Any) -> tuple[int, int] | None:
    if not isinstance(chapter, Mapping):
        return None
    a, b = chapter.get("start"), chapter.get("end")
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    inside = [n for n, p in enumerate(track.pieces) if a <= (p.start + p.end) / 2 <= b]
    return (inside[0], inside[-1]) if inside else None


def _score(track: Track, window: tuple[int, int], analysis: Mapping[str, Any]) -> float:
    start, end = track.bounds(*window)
    return _rated(track, start, end, analysis, *window)[0]


def _rated(
    track: Track,
    start: float,
    end: float,
    analysis: Mapping[str, Any],
    first: int | None = None,
    last: int | None = None,
) -> tuple[float, dict[str, float], str]:
    no_speech = track.no_speech_prob(start, end, first, last)
    rated = score_clip(start, end, track.sentences, analysis, no_speech_prob=no_speech)
    span = (first, last) if first is not None else inside(track, start, end)
    return with_turns(track, rated, *span)


def _main_chapter(start: float, end: float, analysis: Mapping[str, Any]) -> int | None:
    chapter, share = chapter_share(start, end, analysis.get("chapters") or [])
    return chapter if share >= MOSTLY_IN_CHAPTER else None


def checked_range(n: int, item: ClipRange, duration_s: float | None) -> tuple[float, float, str]:
    """Range `n` of `options.segments` as (start, end, title), clamped to the media within
    `RANGE_TOLERANCE_S`. Raises PipelineError(code="invalid_options") naming the problem."""

    def fail(problem: str) -> PipelineError:
        return PipelineError(f"options.segments[{n}]: {problem}", code="invalid_options")

    start, end = item.start_s, item.end_s
    for key, value in (("start", start), ("end", end)):
        if not math.isfinite(value):
            raise fail(f"{key} must be finite, got {value!r}")
    if start < -RANGE_TOLERANCE_S:
        raise fail(f"start {start:g} s is negative")
    if end <= start:
        raise fail(f"end {end:g} s is not after start {start:g} s")
    if duration_s is not None and duration_s > 0:
        if start >= duration_s:
            raise fail(f"start {start:g} s is past the end of the video ({duration_s:.2f} s)")
        if end > duration_s + RANGE_TOLERANCE_S:
            raise fail(f"end {end:g} s is past the end of the video ({duration_s:.2f} s)")
        end = min(end, duration_s)
    return max(0.0, start), end, (item.title or "").strip()


def _check(options: SelectOptions) -> None:
    problems = []
    if not options.clip_duration > 0:
        problems.append(f"clip_duration must be positive, got {options.clip_duration}")
    if not options.overlap_duration >= 0:
        problems.append(f"overlap_duration must not be negative, got {options.overlap_duration}")
    if not options.pad_s >= 0:
        problems.append(f"pad_s must not be negative, got {options.pad_s}")
    if problems:
        raise PipelineError("; ".join(problems), code="invalid_options")


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)
