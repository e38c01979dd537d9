"""The highlight score of a clip of a transcript.

`score_clip` rates a stretch [start, end] of the transcript's sentences
(`pipeline.clips.transcript`): how well it stands on its own.

    score = speech_confidence * sum(WEIGHTS[k] * c[k]) / sum(WEIGHTS[k])   over available k

Each component `c[k]` is in [0, 1] (weight in brackets):

- keywords (0.25): the analysis keywords found in the clip per 100 words, each hit weighted
  by its keyword score over the best keyword's: `1 - exp(-density / 4)`.
- entities (0.10): named entities (numbers, dates and times aside) per 100 words:
  `1 - exp(-density / 3)`.
- sentiment (0.20): the mean abs(score) of the sentiment timeline points overlapping the
  clip, weighted by their overlap.
- coherence (0.15): the largest share of the clip inside one chapter, so a clip crossing a
  chapter boundary scores less; 1.0 without timed chapters.
- speech_rate (0.10): words per minute over the whole clip, silences included: 1.0 from 130
  to 170 wpm, falling linearly to 0 at 60 and at 260 wpm.
- complete_thought (0.20): 0.4 if it starts at a sentence start, + 0.4 if it ends with . ! or
  ?, + 0.2 x questions: 1.0 when a question is followed by its answer inside the clip, 0.5
  with no question, 0 when the clip ends on an unanswered question.

The weights sum to 1, so the score stays in [0, 1]. A component whose input the analysis
lacks (keyword extraction or sentiment switched off, no entities found) is left out of
`components` and the others are re-weighted: a bare transcript still ranks its clips instead
of scoring every one below `min_confidence`.

`speech_confidence = min(1, (1 - no_speech_prob) / 0.7)` with Whisper's mean
`no_speech_prob` over the clip's words: no penalty up to 0.3, falling to 0 for stretches
Whisper itself doubts are speech (music, noise). It is reported in `components` too.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pipeline.clips.transcript import ends_sentence, is_question

W_KEYWORDS = 0.25
W_ENTITIES = 0.10
W_SENTIMENT = 0.20
W_COHERENCE = 0.15
W_SPEECH_RATE = 0.10
W_COMPLETE_THOUGHT = 0.20
WEIGHTS: dict[str, float] = {
    "keywords": W_KEYWORDS,
    "entities": W_ENTITIES,
    "sentiment": W_SENTIMENT,
    "coherence": W_COHERENCE,
    "speech_rate": W_SPEECH_RATE,
    "complete_thought": W_COMPLETE_THOUGHT,
}

KEYWORD_SATURATION_PER_100_WORDS = 4.0  # this density gives 0.63; twice it 0.86
ENTITY_SATURATION_PER_100_WORDS = 3.0
COMFORT_WPM = (130.0, 170.0)
ZERO_WPM = (60.0, 260.0)
NO_SPEECH_FREE = 0.3  # mean no_speech_prob up to this costs nothing
# Numbers and times ("one", "first", "today", "a year") are in every clip: not a highlight.
IGNORED_ENTITY_LABELS = frozenset({"CARDINAL", "ORDINAL", "DATE", "TIME", "QUANTITY", "PERCENT"})
BOUNDARY_TOLERANCE_S = 0.05  # a sentence cut by less than this is not cut
STRONG = 0.5  # a component at or past this is named in the reason
REASON_GROUPS = {"keywords": 0, "entities": 0, "sentiment": 0, "complete_thought": 1}


def keyword_hits(text: str, analysis: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(keyword, hits weighted by its score relative to the best keyword) found in text,
    most prominent first."""
    scores = analysis.get("keyword_scores") or {}
    best = max((float(v) for v in scores.values()), default=0.0)
    found = []
    for order, keyword in enumerate(_keywords(analysis)):
        count = len(_pattern(keyword).findall(text))
        if count:
            weight = float(scores[keyword]) / best if keyword in scores and best > 0 else 1.0
            found.append((order, keyword, count * min(1.0, max(weight, 0.1))))
    found.sort(key=lambda item: (-item[2], item[0]))
    return [(keyword, hits) for _, keyword, hits in found]


def chapter_share(
    start: float, end: float, chapters: Sequence[Mapping[str, Any]]
) -> tuple[int | None, float]:
    """(index of the chapter holding most of [start, end], the share it holds). Each
    chapter reaches halfway into the silence before and after it (the first and last to the
    ends of time), so a clip's pad stays in its chapter. (None, 1.0) without timed chapters."""
    timed = [
        (float(c["start"]), float(c["end"]), k)
        for k, c in enumerate(chapters)
        if isinstance(c, Mapping)
        and isinstance(c.get("start"), int | float)
        and isinstance(c.get("end"), int | float)
    ]
    if not timed or end <= start:
        return None, 1.0
    timed.sort()
    best, share = None, -1.0
    for n, (a, b, k) in enumerate(timed):
        lo = (timed[n - 1][1] + a) / 2 if n else -math.inf
        hi = (b + timed[n + 1][0]) / 2 if n + 1 < len(timed) else math.inf
        inside = max(0.0, min(end, hi) - max(start, lo)) / (end - start)
        if inside > share:
            best, share = k, inside
    return best, min(1.0, share)


def score_clip(
    start: float,
    end: float,
    sentences: Sequence[tuple[float, float, str]],
    analysis: Mapping[str, Any],
    *,
    no_speech_prob: float = 0.0,
) -> tuple[float, dict[str, float], str]:
    """(score, components, reason) of the clip [start, end] (seconds). `sentences` is the
    whole transcript in order (`clip_transcript.sentence_boundaries`); those whose middle lies
    inside the clip are its content. `no_speech_prob` is Whisper's mean over the clip."""
    length = max(end - start, 1e-6)
    inside = [n for n, (a, b, _) in enumerate(sentences) if start <= (a + b) / 2 <= end]
    text = " ".join(sentences[n][2] for n in inside)
    words = len(text.split())
    parts: dict[str, tuple[float, str]] = {}  # component: (value, phrase for the reason)

    if _keywords(analysis):
        hits = keyword_hits(text, analysis)
        density = 100.0 * sum(h for _, h in hits) / max(words, 1)
        value = 1.0 - math.exp(-density / KEYWORD_SATURATION_PER_100_WORDS)
        parts["keywords"] = (value, "keywords: " + ", ".join(k for k, _ in hits[:3]))
    entities = _entities(analysis)
    if entities:
        counts = [(len(_pattern(e, ignore_case=False).findall(text)), e) for e in entities]
        found = sorted((c for c in counts if c[0]), key=lambda c: -c[0])
        density = 100.0 * sum(n for n, _ in found) / max(words, 1)
        value = 1.0 - math.exp(-density / ENTITY_SATURATION_PER_100_WORDS)
        parts["entities"] = (value, "names: " + ", ".join(e for _, e in found[:3]))
    timeline = _timed(analysis.get("sentiment_timeline") or [])
    if timeline:
        parts["sentiment"] = _sentiment(start, end, timeline)
    chapter, share = chapter_share(start, end, analysis.get("chapters") or [])
    on_topic = "within one chapter" if share >= 0.95 else f"mostly in one chapter ({share:.0%})"
    parts["coherence"] = (share, on_topic if chapter is not None else "")
    wpm = words / (length / 60.0)
    rate = _rate_value(wpm)
    pace = "steady pace" if rate >= 0.9 else "slow or sparse speech" if wpm < 150 else "fast speech"
    parts["speech_rate"] = (rate, f"{pace} ({wpm:.0f} wpm)")
    parts["complete_thought"] = _complete_thought(start, end, sentences, inside)

    total = sum(WEIGHTS[k] for k in parts)
    weighted = sum(WEIGHTS[k] * v for k, (v, _) in parts.items()) / total
    confidence = min(1.0, max(0.0, (1.0 - no_speech_prob) / (1.0 - NO_SPEECH_FREE)))
    score = _unit(weighted * confidence)
    components = {k: round(_unit(v), 4) for k, (v, _) in parts.items()}
    components["speech_confidence"] = round(confidence, 4)
    return round(score, 4), components, _reason(parts, confidence, no_speech_prob)


def _complete_thought(
    start: float, end: float, sentences: Sequence[tuple[float, float, str]], inside: list[int]
) -> tuple[float, str]:
    if not inside:
        return 0.0, "no complete sentence"
    tol = BOUNDARY_TOLERANCE_S
    cut_start = any(a < start - tol and b > start + tol for a, b, _ in sentences)
    cut_end = any(a < end - tol and b > end + tol for a, b, _ in sentences)
    first, last = inside[0], inside[-1]
    starts = not cut_start and (first == 0 or ends_sentence(sentences[first - 1][2]))
    ends = not cut_end and ends_sentence(sentences[last][2])
    texts = [sentences[n][2] for n in inside]
    answered = any(is_question(q) and not is_question(a) for q, a in itertools.pairwise(texts))
    questions = 1.0 if answered else 0.0 if is_question(texts[-1]) else 0.5
    value = 0.4 * starts + 0.4 * ends + 0.2 * questions
    phrase = "complete sentences" if starts and ends else "cut mid-sentence"
    return value, phrase + ("; a question and its answer" if answered else "")


def _sentiment(
    start: float, end: float, timeline: list[tuple[float, float, float]]
) -> tuple[float, str]:
    weighted = []
    for a, b, score in timeline:
        overlap = min(end, b) - max(start, a)
        if overlap > 0 or (b <= a and start <= a <= end):  # a zero-length point still counts
            weighted.append((max(overlap, 1e-3), score))
    if not weighted:
        return 0.0, "no sentiment"
    total = sum(w for w, _ in weighted)
    intensity = sum(w * abs(s) for w, s in weighted) / total
    signed = sum(w * s for w, s in weighted) / total
    strength = "strong" if intensity >= STRONG else "mild" if intensity >= 0.2 else "neutral"
    direction = "" if strength == "neutral" else " positive" if signed >= 0 else " negative"
    return min(1.0, intensity), f"{strength}{direction} sentiment"


def _rate_value(wpm: float) -> float:
    low, high = COMFORT_WPM
    zero_low, zero_high = ZERO_WPM
    if wpm < low:
        return _unit((wpm - zero_low) / (low - zero_low))
    if wpm > high:
        return _unit((zero_high - wpm) / (zero_high - high))
    return 1.0


def _reason(parts: dict[str, tuple[float, str]], confidence: float, no_speech: float) -> str:
    """The strong components, at most three: content (keywords, entities, sentiment) by
    contribution first, then the shape of the clip, which most clips share."""

    def rank(item: tuple[str, tuple[float, str]]) -> tuple[int, float]:
        name, (value, _) = item
        return REASON_GROUPS.get(name, 2), -WEIGHTS[name] * value

    ranked = [(v, phrase) for _, (v, phrase) in sorted(parts.items(), key=rank) if phrase]
    strong = [phrase for value, phrase in ranked if value >= STRONG][:3]
    reason = "; ".join(strong) if strong else f"nothing stands out ({ranked[0][1]})"
    if confidence < 1.0:
        reason += f"; uncertain speech (no_speech_prob {no_speech:.2f})"
    return reason


def _keywords(analysis: Mapping[str, Any]) -> list[str]:
    listed = [str(k) for k in analysis.get("keywords") or []]
    scored = [str(k) for k in analysis.get("keyword_scores") or {}]
    return [k for k in dict.fromkeys(listed + scored) if k.strip()]


def _entities(analysis: Mapping[str, Any]) -> list[str]:
    texts = (
        str(e.get("text") or "")
        for e in analysis.get("entities") or []
        if isinstance(e, Mapping) and e.get("label") not in IGNORED_ENTITY_LABELS
    )
    return [t for t in dict.fromkeys(texts) if t.strip()]


def _timed(timeline: Sequence[Any]) -> list[tuple[float, float, float]]:
    points = []
    for p in timeline:
        if not isinstance(p, Mapping):
            continue
        a, b, s = p.get("start"), p.get("end"), p.get("score")
        if all(isinstance(v, int | float) for v in (a, b, s)):
            points.append((float(a), float(b), float(s)))  # type: ignore[arg-type]
    return points


@lru_cache(maxsize=4096)
def _pattern(phrase: str, ignore_case: bool = True) -> re.Pattern[str]:
    """Whole words, any run of spaces, a plural s allowed: "budget" finds "Budgets". Names
    keep their case: the entity "US" is not the word "us"."""
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){words}(?:e?s)?(?!\w)", re.IGNORECASE if ignore_case else 0)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
