"""Per-speaker analysis of a diarized transcript (`analysis_results.speakers`).

The speakers come from the segments' `speaker` labels (the diarization cuts segments so
that each holds one speaker): a speaker's talk time is the time of their segments, its
share that of all labelled segments, a turn a run of their segments with nobody else's in
between. Each speaker's own text gets the analysis' sentiment (the same scorer and label
rule as the whole transcript) and keywords (the same extractor, ranked against that text).
Parts the transcript's language or the options rule out for the whole transcript are left
out here too (None / []). An undiarized transcript has no `speakers` at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.analysis import transcript_text as tt
from pipeline.analysis.keywords import Candidates, unsure_words, without_words
from pipeline.analysis.nlp_models import NlpModels
from pipeline.analysis.polarity import SentimentLabel, sentiment_label
from pipeline.options import AnalyzeOptions

SPEAKER_KEYWORDS = 5


@dataclass(frozen=True)
class SpeakerSummary:
    speaker: str
    talk_time: float  # seconds inside the speaker's segments
    talk_share: float  # of all speakers' talk time, 0-1
    turns: int
    words: int
    first_start: float  # seconds: when the speaker is first heard
    sentiment: SentimentLabel | None = None
    sentiment_score: float | None = None
    keywords: list[str] = field(default_factory=list)


@dataclass
class _Speech:
    segments: list[Mapping[str, Any]]
    talk_time: float = 0.0
    turns: int = 0
    words: int = 0

    @property
    def text(self) -> str:
        return " ".join(str(s.get("text") or "").strip() for s in self.segments).strip()


def speeches(segments: Sequence[Mapping[str, Any]]) -> dict[str, _Speech]:
    """Each labelled speaker's segments, talk time, turns and words, in order of first speech."""
    found: dict[str, _Speech] = {}
    previous: str | None = None
    ordered = sorted(segments, key=lambda s: float(s.get("start") or 0.0))
    for seg in ordered:
        speaker = seg.get("speaker")
        if not speaker or not str(seg.get("text") or "").strip():
            continue
        speech = found.setdefault(str(speaker), _Speech([]))
        speech.segments.append(seg)
        start, end = float(seg.get("start") or 0.0), float(seg.get("end") or 0.0)
        speech.talk_time += max(0.0, end - start)
        speech.words += len(seg.get("words") or ()) or len(str(seg.get("text")).split())
        speech.turns += speaker != previous
        previous = str(speaker)
    return found


def speaker_analysis(
    models: NlpModels,
    segments: Sequence[Mapping[str, Any]],
    options: AnalyzeOptions,
    language: str | None,
    gone: Collection[str],
) -> list[SpeakerSummary] | None:
    """Per speaker, in order of first speech; None when no segment carries a speaker.
    `gone`: the parts skipped for the transcript's language."""
    found = speeches(segments)
    if not found:
        return None
    total = sum(s.talk_time for s in found.values()) or 1.0
    scored = options.sentiment_analysis and "sentiment" not in gone
    keyworded = options.keyword_extraction and "keywords" not in gone
    out = []
    for speaker, speech in found.items():
        extra: dict[str, Any] = {}
        if scored or keyworded:
            extra = _text_parts(models, speech, language, scored, keyworded)
        out.append(
            SpeakerSummary(
                speaker=speaker,
                talk_time=round(speech.talk_time, 3),
                talk_share=round(speech.talk_time / total, 4),
                turns=speech.turns,
                words=speech.words,
                first_start=round(float(speech.segments[0].get("start") or 0.0), 3),
                **extra,
            )
        )
    return out


def _text_parts(
    models: NlpModels, speech: _Speech, language: str | None, scored: bool, keyworded: bool
) -> dict[str, Any]:
    """The sentiment and keywords of one speaker's text."""
    text = speech.text
    nlp = models.spacy_for(language)
    parsed = tt.parse(nlp, text) if nlp is not None else tt.ParsedText(tt.split_sentences(text))
    sentences = [text[a:b] for a, b in parsed.spans]
    if not sentences:
        return {}
    weights = np.array([len(s.split()) for s in sentences], np.float32)
    parts: dict[str, Any] = {}
    if scored:
        label, score = sentiment_label(models.sentiment.score(sentences), weights)
        parts.update(sentiment=label, sentiment_score=round(score, 4))
    if keyworded and nlp is not None:
        unsure = unsure_words(speech.segments)
        vectors = models.embedder.embed(without_words(sentences, unsure))
        doc = weights @ vectors
        doc = doc / max(float(np.linalg.norm(doc)), 1e-9)
        chosen = Candidates.of(models, parsed, speech.segments).keywords(doc, SPEAKER_KEYWORDS)
        parts["keywords"] = chosen["keywords"]
    return parts
