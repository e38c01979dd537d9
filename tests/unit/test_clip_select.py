"""Choosing clips from a transcript and its analysis: cuts at sentence edges, scores, titles."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import pytest

from pipeline.clips.score import WEIGHTS, score_clip
from pipeline.clips.select import (
    ClipPlan,
    SelectOptions,
    candidates,
    custom_clips,
    select_clips,
    sentence_boundaries,
)
from pipeline.errors import PipelineError
from pipeline.options import ClipRange

BLAND = [
    "The room has a table and some chairs near the window.",
    "There is a shelf on the wall with a few boxes on it.",
    "The floor is made of wood and the walls are painted white.",
    "A lamp stands in the corner next to a small plant pot.",
    "The door at the back leads to a short corridor and stairs.",
    "Each box on the shelf holds paper and a couple of pens.",
    "The window looks out over a street with parked cars.",
    "A clock hangs above the door and shows the time.",
]
HIGHLIGHT = [
    "Acme just doubled the quarterly budget for the Berlin team!",
    "This is an amazing result and we are thrilled about the revenue growth!",
    "Why did the quarterly budget grow so fast in Berlin?",
    "Because Acme customers love the new product and revenue exploded!",
    "Honestly the revenue numbers are fantastic and the Berlin office is ecstatic!",
    "Acme will invest the extra quarterly budget in hiring brilliant people!",
    "Everyone at Acme in Berlin celebrated the record revenue last night!",
]
ANALYSIS: dict[str, Any] = {
    "sentiment": "positive",
    "sentiment_score": 0.4,
    "topics": ["business"],
    "topic_scores": {"business": 0.8},
    "keywords": ["quarterly budget", "revenue", "product"],
    "keyword_scores": {"quarterly budget": 0.62, "revenue": 0.55, "product": 0.31},
    "entities": [
        {"text": "Acme", "label": "ORG", "count": 5},
        {"text": "Berlin", "label": "GPE", "count": 5},
        {"text": "one", "label": "CARDINAL", "count": 9},
    ],
    "summary": "",
    "chapters": [],
    "word_count": 0,
    "speaking_rate_wpm": None,
    "language": "en",
    "notes": [],
}


def make_segments(
    sentences: Sequence[str],
    *,
    per_segment: int = 1,
    words_per_s: float = 2.5,
    gap_s: float = 0.8,
    start_s: float = 0.5,
    with_words: bool = True,
    no_speech_prob: float = 0.02,
) -> list[dict[str, Any]]:
    """Whisper-like segments of `per_segment` sentences each: words evenly timed (each word
    0.8 of its slot, a short pause after it) and `gap_s` of silence after every sentence."""
    segments: list[dict[str, Any]] = []
    t = start_s
    slot = 1.0 / words_per_s
    for n in range(0, len(sentences), per_segment):
        group = sentences[n : n + per_segment]
        words = []
        for sentence in group:
            for word in sentence.split():
                words.append(
                    {"start": round(t, 3), "end": round(t + 0.8 * slot, 3), "word": f" {word}"}
                )
                words[-1]["probability"] = 0.9
                t += slot
            t += gap_s
        segments.append(
            {
                "id": len(segments),
                "start": words[0]["start"],
                "end": words[-1]["end"],
                "text": " " + " ".join(group),
                "avg_logprob": -0.2,
                "no_speech_prob": no_speech_prob,
                "words": words if with_words else [],
            }
        )
    return segments


def timeline(segments: list[dict[str, Any]], strong: Sequence[str]) -> list[dict[str, Any]]:
    """0.9 for segments holding one of `strong`, 0.0 for the others."""
    return [
        {
            "start": s["start"],
            "end": s["end"],
            "score": 0.9 if any(x in s["text"] for x in strong) else 0.0,
            "label": "positive",
        }
        for s in segments
    ]


def word_times(segments: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return sorted((w["start"], w["end"]) for s in segments for w in s["words"])


def assert_clean_cuts(
    clips: Sequence[ClipPlan], segments: list[dict[str, Any]], pad_s: float, duration: float
) -> None:
    """Every clip starts at a sentence start less at most pad_s, never before the previous
    word's end, and ends at a sentence end plus at most pad_s, never after the next word."""
    sentences = sentence_boundaries(segments)
    words = word_times(segments)
    for clip in clips:
        first = min(sentences, key=lambda s: abs(s.start - clip.start - pad_s / 2))
        last = min(sentences, key=lambda s: abs(s.end - clip.end + pad_s / 2))
        assert first.start - pad_s - 1e-9 <= clip.start <= first.start
        assert last.end <= clip.end <= last.end + pad_s + 1e-9
        assert clip.start >= 0.0 and clip.end <= duration
        previous_end = max((b for _, b in words if b <= first.start), default=0.0)
        next_start = min((a for a, _ in words if a >= last.end), default=duration)
        assert clip.start >= previous_end - 1e-9 and clip.end <= next_start + 1e-9
        # No word is cut: the words the clip touches are exactly those of its sentences.
        touched = [(a, b) for a, b in words if a < clip.end and b > clip.start]
        assert touched == [(a, b) for a, b in words if first.start <= a and b <= last.end]


def assert_well_formed(clips: Sequence[ClipPlan]) -> None:
    for clip in clips:
        assert 0.0 <= clip.score <= 1.0
        assert all(0.0 <= v <= 1.0 for v in clip.components.values()), clip.components
        assert clip.title and len(clip.title) <= 60 and not clip.title.startswith("Clip ")
        assert clip.reason and clip.text
    assert [c.start for c in clips] == sorted(c.start for c in clips)


def long_talk() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """About 4 minutes: bland, highlight, bland."""
    sentences = BLAND * 2 + HIGHLIGHT + BLAND * 2
    segments = make_segments(sentences)
    analysis = dict(ANALYSIS, sentiment_timeline=timeline(segments, HIGHLIGHT))
    return segments, analysis


# --- sentences ---


def test_sentence_boundaries_split_a_segment_at_sentence_ends_by_word_times() -> None:
    segments = make_segments(["Hello there, friend.", "How are you today?"], per_segment=2)
    assert len(segments) == 1
    sentences = sentence_boundaries(segments)
    words = segments[0]["words"]
    assert [s.text for s in sentences] == ["Hello there, friend.", "How are you today?"]
    assert sentences[0].start == words[0]["start"] and sentences[0].end == words[2]["end"]
    assert sentences[1].start == words[3]["start"] and sentences[1].end == words[-1]["end"]


def test_sentence_boundaries_without_words_are_the_segments() -> None:
    segments = make_segments(["One thing here.", "Two things there."], with_words=False)
    sentences = sentence_boundaries(segments)
    assert [(s.start, s.end, s.text) for s in sentences] == [
        (seg["start"], seg["end"], seg["text"].strip()) for seg in segments
    ]


def test_sentence_boundaries_sort_segments_and_skip_empty_ones() -> None:
    segments = make_segments(["First sentence here.", "Second one follows.", "Third."])
    shuffled = [segments[2], {"start": 0.0, "end": 0.1, "text": " ", "words": []}, *segments[:2]]
    assert [s.text for s in sentence_boundaries(shuffled)] == [
        "First sentence here.",
        "Second one follows.",
        "Third.",
    ]


def test_abbreviations_do_not_end_a_sentence() -> None:
    segments = make_segments(["We met Dr. Smith today."])
    assert [s.text for s in sentence_boundaries(segments)] == ["We met Dr. Smith today."]


@pytest.mark.parametrize("analysis", [ANALYSIS, {}])
def test_empty_input_gives_nothing(analysis: dict[str, Any]) -> None:
    assert sentence_boundaries([]) == []
    assert candidates([], analysis, SelectOptions(), None) == []
    assert select_clips([], analysis, SelectOptions(), None) == []
    assert select_clips([], analysis, SelectOptions(), 120.0) == []
    assert custom_clips([], [], analysis, 60.0) == []


# --- cutting ---


@pytest.mark.parametrize(
    ("clip_duration", "overlap", "pad_s", "gap_s", "per_segment"),
    [(30.0, 2.0, 0.3, 0.8, 1), (20.0, 5.0, 0.3, 0.2, 2), (45.0, 0.0, 0.5, 1.5, 3)],
)
def test_clips_start_and_end_at_sentences_with_a_pad_of_silence(
    clip_duration: float, overlap: float, pad_s: float, gap_s: float, per_segment: int
) -> None:
    sentences = BLAND * 2 + HIGHLIGHT + BLAND * 2
    segments = make_segments(sentences, gap_s=gap_s, per_segment=per_segment)
    analysis = dict(ANALYSIS, sentiment_timeline=timeline(segments, HIGHLIGHT))
    duration = segments[-1]["end"] + 0.1
    options = SelectOptions(clip_duration, overlap, max_clips=20, min_confidence=0.0, pad_s=pad_s)
    clips = select_clips(segments, analysis, options, duration)
    assert len(clips) >= 3
    assert_clean_cuts(clips, segments, pad_s, duration)
    assert_well_formed(clips)
    for clip in clips:
        assert 0.6 * clip_duration <= clip.end - clip.start <= 1.4 * clip_duration + 2 * pad_s
    for start, end, _ in candidates(segments, analysis, options, duration):
        assert end - start >= 0.4 * clip_duration


def test_pad_is_the_silence_up_to_pad_s_stopping_at_words_zero_and_the_end() -> None:
    segments = make_segments(BLAND * 3, gap_s=0.2, start_s=0.1)
    duration = segments[-1]["end"] + 0.05
    pad_s = 1.0
    options = SelectOptions(25.0, 2.0, max_clips=10, min_confidence=0.0, pad_s=pad_s)
    clips = select_clips(segments, {}, options, duration)
    assert len(clips) >= 2
    assert_clean_cuts(clips, segments, pad_s, duration)
    words = word_times(segments)
    sentences = sentence_boundaries(segments)
    for clip in clips:
        first = min((s for s in sentences if s.start >= clip.start), key=lambda s: s.start)
        last = max((s for s in sentences if s.end <= clip.end), key=lambda s: s.end)
        previous = max((b for _, b in words if b <= first.start), default=0.0)
        following = min((a for a, _ in words if a >= last.end), default=duration)
        assert clip.start == pytest.approx(max(first.start - pad_s, previous, 0.0))
        assert clip.end == pytest.approx(min(last.end + pad_s, following, duration))
    assert clips[0].start == 0.0  # the speech starts 0.1 s in
    assert clips[-1].end == duration


def test_speech_shorter_than_clip_duration_gives_one_clip_covering_it() -> None:
    segments = make_segments(HIGHLIGHT[:3])
    analysis = dict(ANALYSIS, sentiment_timeline=timeline(segments, HIGHLIGHT))
    clips = select_clips(segments, analysis, SelectOptions(60.0, min_confidence=0.0), None)
    assert len(clips) == 1
    assert clips[0].start == pytest.approx(segments[0]["start"] - 0.3)
    assert clips[0].end == segments[-1]["end"]  # duration None: the speech's end
    assert clips[0].text == " ".join(HIGHLIGHT[:3])


def test_unsorted_overlapping_segments_and_missing_words() -> None:
    segments = make_segments(BLAND * 2 + HIGHLIGHT, with_words=False)
    segments[5]["start"] -= 0.5  # overlaps its neighbour
    messy = list(reversed(segments))
    clips = select_clips(messy, {}, SelectOptions(min_confidence=0.0), None)
    assert clips
    assert_well_formed(clips)
    ends = {s["end"] for s in segments}
    starts = {s["start"] for s in segments}
    for clip in clips:
        assert any(0 <= s - clip.start <= 0.3 + 1e-9 for s in starts)
        assert any(0 <= clip.end - e <= 0.3 + 1e-9 for e in ends)


# --- scoring and choosing ---


def test_score_weights_sum_to_one() -> None:
    assert math.isclose(sum(WEIGHTS.values()), 1.0)


def test_the_highlight_outranks_the_bland_passages() -> None:
    segments, analysis = long_talk()
    options = SelectOptions(30.0, 2.0, max_clips=10, min_confidence=0.0)
    clips = select_clips(segments, analysis, options, None)
    best = max(clips, key=lambda c: c.score)
    assert sum(s in best.text for s in HIGHLIGHT) >= 4
    bland = [c for c in clips if not any(s in c.text for s in HIGHLIGHT)]
    assert bland and all(c.score < 0.5 for c in bland)
    assert best.score >= 0.7
    assert best.components["keywords"] > 0.8 and best.components["sentiment"] > 0.7
    assert best.components["entities"] > 0.8
    assert best.reason == (
        "keywords: revenue, quarterly budget, product; strong positive sentiment; "
        "names: Acme, Berlin"
    )
    assert set(best.keywords) == {"quarterly budget", "revenue", "product"}


def test_min_confidence_and_max_clips_are_respected() -> None:
    segments, analysis = long_talk()
    every = select_clips(segments, analysis, SelectOptions(min_confidence=0.0, max_clips=50), None)
    assert len(every) == 6
    two = select_clips(segments, analysis, SelectOptions(min_confidence=0.0, max_clips=2), None)
    assert len(two) == 2
    assert sorted(c.score for c in two) == sorted(c.score for c in every)[-2:]
    good = select_clips(segments, analysis, SelectOptions(min_confidence=0.5), None)
    assert len(good) == 2 and good == [c for c in every if c.score >= 0.5]
    perfect = select_clips(segments, analysis, SelectOptions(min_confidence=1.0), None)
    assert perfect == []  # the best clip scores about 0.91
    assert select_clips(segments, analysis, SelectOptions(max_clips=0), None) == []


@pytest.mark.parametrize("overlap", [0.0, 2.0, 10.0])
def test_kept_clips_overlap_by_at_most_overlap_duration(overlap: float) -> None:
    segments, analysis = long_talk()
    options = SelectOptions(30.0, overlap, max_clips=50, min_confidence=0.0)
    clips = select_clips(segments, analysis, options, None)
    assert len(clips) >= 4
    for a, b in itertools.combinations(clips, 2):
        assert min(a.end, b.end) - max(a.start, b.start) <= overlap + 1e-6


def test_question_followed_by_its_answer_scores_higher() -> None:
    answered = make_segments(["Why is the sky blue?", "Because air scatters blue light."])
    asked = make_segments(["Air scatters light, they say.", "So why is the sky blue?"])
    plain = make_segments(["The sky is blue today.", "Air scatters blue light."])

    def thought(segments: list[dict[str, Any]]) -> float:
        sentences = sentence_boundaries(segments)
        start, end = sentences[0].start, sentences[-1].end
        _, components, _ = score_clip(start, end, sentences, {})
        return components["complete_thought"]

    assert thought(answered) == 1.0
    assert thought(asked) < thought(plain) < thought(answered)
    sentences = sentence_boundaries(answered)
    _, _, reason = score_clip(sentences[0].start, sentences[-1].end, sentences, {})
    assert "a question and its answer" in reason


def test_a_clip_cut_mid_sentence_is_less_complete() -> None:
    segments = make_segments(["We went to the market early.", "It was busy."], per_segment=2)
    sentences = sentence_boundaries(segments)
    words = segments[0]["words"]
    whole = score_clip(sentences[0].start, sentences[-1].end, sentences, {})[1]
    cut = score_clip(words[2]["start"], sentences[-1].end, sentences, {})[1]
    assert whole["complete_thought"] == 0.9 > cut["complete_thought"]  # 1.0 needs a Q and A


def test_silence_and_doubtful_speech_lower_the_score() -> None:
    talk = make_segments(BLAND[:6])
    sparse = make_segments(BLAND[:6], gap_s=5.0)
    doubtful = make_segments(BLAND[:6], no_speech_prob=0.8)

    def rated(segments: list[dict[str, Any]]) -> tuple[float, dict[str, float], str]:
        sentences = sentence_boundaries(segments)
        nsp = segments[0]["no_speech_prob"]
        return score_clip(sentences[0].start, sentences[-1].end, sentences, {}, no_speech_prob=nsp)

    assert rated(sparse)[1]["speech_rate"] < rated(talk)[1]["speech_rate"]
    assert rated(doubtful)[0] < rated(talk)[0]
    assert rated(doubtful)[1]["speech_confidence"] < 1.0
    assert "uncertain speech" in rated(doubtful)[2]


def test_a_clip_across_chapters_is_less_coherent() -> None:
    segments = make_segments(BLAND)
    sentences = sentence_boundaries(segments)
    chapters = [
        {"start": sentences[0].start, "end": sentences[3].end, "title": "A", "summary": ""},
        {"start": sentences[4].start, "end": sentences[-1].end, "title": "B", "summary": ""},
    ]
    inside = score_clip(sentences[0].start, sentences[3].end, sentences, {"chapters": chapters})
    across = score_clip(sentences[2].start, sentences[6].end, sentences, {"chapters": chapters})
    assert inside[1]["coherence"] == 1.0
    assert 0.3 < across[1]["coherence"] < 0.8
    no_chapters = score_clip(sentences[2].start, sentences[6].end, sentences, {})
    assert no_chapters[1]["coherence"] == 1.0


def test_transcript_alone_still_gives_clips() -> None:
    segments = make_segments(BLAND * 4)
    empty_analysis: dict[str, Any] = {
        "keywords": [],
        "keyword_scores": {},
        "entities": [],
        "sentiment_timeline": [],
        "chapters": [],
    }
    for analysis in ({}, empty_analysis):
        clips = select_clips(segments, analysis, SelectOptions(), None)
        assert clips
        assert_well_formed(clips)
        assert set(clips[0].components) == {
            "coherence",
            "speech_rate",
            "complete_thought",
            "speech_confidence",
        }
        # No keywords: each title is its clip's opening words.
        assert [c.title for c in clips] == [
            "The room has a table and…",
            "There is a shelf on the…",
            "A clock hangs above the door…",
            "Each box on the shelf holds…",
            "A lamp stands in the corner…",
        ]


# --- chapters and titles ---


def chaptered_talk() -> tuple[list[dict[str, Any]], dict[str, Any], list[tuple[float, float]]]:
    """Three chapters: bland (short), highlight, bland (long: ~2.5 x 30 s)."""
    parts = [BLAND[:5], HIGHLIGHT, BLAND * 2]
    segments = make_segments([s for part in parts for s in part])
    sentences = sentence_boundaries(segments)
    spans, n = [], 0
    for part in parts:
        spans.append((sentences[n].start, sentences[n + len(part) - 1].end))
        n += len(part)
    chapters = [
        {"start": a, "end": b, "title": t, "summary": ""}
        for (a, b), t in zip(spans, ["Room Tour", "Acme's Big Quarter", "Back Office"], strict=True)
    ]
    analysis = dict(ANALYSIS, chapters=chapters, sentiment_timeline=timeline(segments, HIGHLIGHT))
    return segments, analysis, spans


def test_chapters_are_candidates_titled_by_their_chapter() -> None:
    segments, analysis, spans = chaptered_talk()
    options = SelectOptions(30.0, 2.0, max_clips=10, min_confidence=0.0)
    found = candidates(segments, analysis, options, None)
    chapter_cands = [(a, b) for a, b, source in found if source == "chapter"]
    # The two short chapters whole with their 0.3 s pads, then the long one's best window
    # (test_a_long_chapter_gives_its_best_window).
    assert len(chapter_cands) == 3
    assert chapter_cands[:2] == [pytest.approx((a - 0.3, b + 0.3)) for a, b in spans[:2]]
    clips = select_clips(segments, analysis, options, None)
    best = max(clips, key=lambda c: c.score)
    assert best.source == "chapter" and best.title == "Acme's Big Quarter"
    assert best.components["coherence"] == 1.0
    assert len({c.title for c in clips}) == len(clips)


def test_a_long_chapter_gives_its_best_window() -> None:
    segments, analysis, spans = chaptered_talk()
    long_start, long_end = spans[2]
    assert long_end - long_start > 1.5 * 30.0
    options = SelectOptions(30.0, 2.0, max_clips=10, min_confidence=0.0)
    found = candidates(segments, analysis, options, None)
    inside = [
        (a, b)
        for a, b, source in found
        if source == "chapter" and a >= long_start - 0.31 and b <= long_end + 0.31
    ]
    assert len(inside) == 1
    a, b = inside[0]
    assert 0.6 * 30 <= b - a <= 1.4 * 30 + 0.6
    assert_clean_cuts([_plan(a, b)], segments, 0.3, segments[-1]["end"])


def _plan(start: float, end: float) -> ClipPlan:
    return ClipPlan(start, end, "t", 0.5, "r", "x", "window", {}, [])


def test_titles_from_keywords_then_opening_words() -> None:
    segments, analysis = long_talk()
    clips = select_clips(segments, analysis, SelectOptions(min_confidence=0.0), None)
    best = max(clips, key=lambda c: c.score)
    # Its keywords, most weighted hits first: revenue 3 x 0.55/0.62, quarterly budget 2 x 1.0.
    assert best.title == "Revenue · Quarterly Budget · Product"
    bland = [c for c in clips if not c.keywords]
    assert bland
    for clip in bland:
        opening = clip.text.split()[:6]
        assert clip.title.rstrip("…").split() == [*opening[:-1], opening[-1].rstrip(".,;:!?")]
    assert_well_formed(clips)


# --- custom ranges ---


def test_custom_clips_keep_the_ranges_and_score_them() -> None:
    segments, analysis = long_talk()
    sentences = sentence_boundaries(segments)
    hi = next(s for s in sentences if s.text == HIGHLIGHT[0])
    ranges = [ClipRange(hi.start, hi.start + 25.0), ClipRange(1.234, 9.876, "My pick")]
    clips = custom_clips(ranges, segments, analysis, 300.0)
    assert [(c.start, c.end) for c in clips] == [(hi.start, hi.start + 25.0), (1.234, 9.876)]
    assert [c.source for c in clips] == ["custom", "custom"]
    assert clips[1].title == "My pick"
    assert clips[0].title and clips[0].title != "My pick"
    assert clips[0].text.startswith(HIGHLIGHT[0])
    assert clips[0].score > clips[1].score
    assert_well_formed([clips[0]])
    assert clips[1].components["complete_thought"] < 1.0  # cuts into words


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([ClipRange(-5.0, 10.0)], "options.segments[0]: start -5 s is negative"),
        (
            [ClipRange(0.0, 10.0), ClipRange(20.0, 20.0)],
            "options.segments[1]: end 20 s is not after start 20 s",
        ),
        (
            [ClipRange(0.0, 10.0), ClipRange(30.0, 95.0)],
            "options.segments[1]: end 95 s is past the end of the video (60.00 s)",
        ),
        (
            [ClipRange(70.0, 80.0)],
            "options.segments[0]: start 70 s is past the end of the video (60.00 s)",
        ),
        ([ClipRange(math.nan, 10.0)], "options.segments[0]: start must be finite"),
        ([ClipRange(1.0, math.inf)], "options.segments[0]: end must be finite"),
    ],
)
def test_custom_ranges_are_validated(ranges: list[Any], message: str) -> None:
    segments = make_segments(BLAND)
    with pytest.raises(PipelineError) as caught:
        custom_clips(ranges, segments, ANALYSIS, 60.0)
    assert caught.value.code == "invalid_options"
    assert caught.value.message.startswith(message)


def test_custom_ranges_within_tolerance_are_clamped() -> None:
    segments = make_segments(BLAND)
    clips = custom_clips([ClipRange(-0.05, 60.04)], segments, {}, 60.0)
    assert (clips[0].start, clips[0].end) == (0.0, 60.0)
    unknown = custom_clips([ClipRange(10.0, 500.0)], segments, {}, None)
    assert (unknown[0].start, unknown[0].end) == (10.0, 500.0)


def test_invalid_select_options_are_refused() -> None:
    segments = make_segments(BLAND)
    with pytest.raises(PipelineError) as caught:
        select_clips(segments, {}, SelectOptions(clip_duration=0.0), None)
    assert caught.value.code == "invalid_options"


def test_short_chapters_are_not_candidates() -> None:
    segments = make_segments(BLAND * 3)
    sentences = sentence_boundaries(segments)
    tiny = {"start": sentences[3].start, "end": sentences[4].end, "title": "Tiny", "summary": ""}
    untimed = {"start": None, "end": None, "title": "Untimed", "summary": ""}
    analysis = dict(ANALYSIS, chapters=[tiny, untimed])
    found = candidates(segments, analysis, SelectOptions(), None)
    assert found and all(source == "window" for _, _, source in found)


def test_entities_keep_their_case_and_numbers_do_not_count() -> None:
    segments = make_segments(["Tell us about the US plan for one year."])
    sentences = sentence_boundaries(segments)
    analysis = {
        "entities": [
            {"text": "US", "label": "GPE", "count": 1},
            {"text": "one year", "label": "DATE", "count": 1},
        ]
    }
    lower = make_segments(["Tell us about the plan for one year."])
    lower_sentences = sentence_boundaries(lower)
    with_name = score_clip(sentences[0].start, sentences[0].end, sentences, analysis)[1]
    without = score_clip(
        lower_sentences[0].start, lower_sentences[0].end, lower_sentences, analysis
    )[1]
    assert with_name["entities"] > 0.5 and without["entities"] == 0.0


def test_plans_serialise_for_storage() -> None:
    segments, analysis = long_talk()
    clips = select_clips(segments, analysis, SelectOptions(), 300.0)
    stored = clips[0].to_dict()
    assert set(stored) == {
        "start",
        "end",
        "title",
        "score",
        "reason",
        "text",
        "source",
        "components",
        "keywords",
    }
    assert stored["source"] == "window"  # the analysis has no chapters
    assert json.loads(json.dumps(stored)) == stored
