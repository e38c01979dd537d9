"""Keyword candidates and keyword choice for the analysis stage.

- Candidates are the most frequent noun phrases (`transcript_text.keyword_candidates`;
  time and quantity expressions are already cut out of the phrases there), without:
  - phrases holding a word Whisper itself was unsure of: every occurrence of it in the
    segments' `words` has a probability under `LOW_WORD_PROBABILITY` (a misheard word such as
    "fore-dessert" comes out like that); transcripts without word probabilities keep all;
  - single generic nouns (`GENERIC_NOUNS`: "thing", "week", "result", ...), which fit any
    video. Inside a longer phrase they stay ("test result").
- The sentence embeddings behind topics, chapters and the summary are taken without the
  unsure words (`without_words`).
- Choice: Maximal Marginal Relevance (`mmr`) against the document vector. A multi-word phrase
  is preferred over its own words: once one is chosen, its single words are dropped from the
  keywords (and can't be chosen afterwards).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.analysis import transcript_text as tt
from pipeline.analysis.nlp_models import NlpModels

MAX_CANDIDATES = 200
MMR_RELEVANCE_WEIGHT = 0.6
# Whisper's word probability under which a word is taken as unsure (misheard or invented).
LOW_WORD_PROBABILITY = 0.5
# Nouns that say nothing about a video's subject; lemmas, compared to one-word phrases.
GENERIC_NOUNS = frozenset({
    "thing", "stuff", "way", "lot", "bit", "kind", "sort", "part", "point", "fact", "case",
    "time", "day", "week", "month", "year", "hour", "minute", "second", "moment", "today",
    "tonight", "yesterday", "tomorrow", "night", "morning", "evening", "weekend",
    "result", "number", "amount", "problem", "question", "answer", "idea", "reason", "end",
    "start", "side", "place", "people", "person", "guy", "everyone", "someone", "something",
    "anything", "everything", "nothing", "one", "video", "channel", "episode", "version",
})  # fmt: skip

_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def normalise_word(word: str) -> str:
    """A word as compared between Whisper and spaCy: lower case, no edge punctuation."""
    return _EDGE_PUNCT.sub("", word.strip().lower())


def unsure_words(
    segments: Sequence[Mapping[str, Any]], threshold: float = LOW_WORD_PROBABILITY
) -> frozenset[str]:
    """Words whose every occurrence in the segments' `words` has probability < threshold."""
    best: dict[str, float] = {}
    for seg in segments:
        for word in seg.get("words") or ():
            key = normalise_word(str(word.get("word") or ""))
            probability = word.get("probability")
            if key and isinstance(probability, int | float):
                best[key] = max(best.get(key, 0.0), float(probability))
    return frozenset(w for w, p in best.items() if p < threshold)


def without_words(sentences: Sequence[str], unsure: frozenset[str]) -> list[str]:
    """The sentences without their unsure words, for embedding: topics, chapters and the
    summary's choice then rest on what was heard clearly."""
    if not unsure:
        return list(sentences)
    kept = [" ".join(w for w in s.split() if normalise_word(w) not in unsure) for s in sentences]
    return [k or s for k, s in zip(kept, sentences, strict=True)]


def _usable(key: str, display: str, unsure: frozenset[str]) -> bool:
    if " " not in key and key in GENERIC_NOUNS:
        return False
    words = {normalise_word(w) for w in display.split()}
    words |= {part for w in words for part in w.split("-")}
    return not words & unsure


@dataclass(frozen=True)
class Candidates:
    """Keyword candidates (noun phrases), the sentences each occurs in, their embeddings."""

    texts: list[str]
    sentences: list[set[int]]
    vectors: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> Candidates:
        return cls([], [], np.zeros((0, dim), np.float32))

    @classmethod
    def of(
        cls, models: NlpModels, parsed: tt.ParsedText, segments: Sequence[Mapping[str, Any]]
    ) -> Candidates:
        unsure = unsure_words(segments)
        phrases = [p for p in parsed.phrases if _usable(p[0], p[1], unsure)]
        kept = tt.ParsedText(parsed.spans, phrases, parsed.entities)
        texts, sentences = tt.keyword_candidates(kept, MAX_CANDIDATES)
        return cls(texts, sentences, models.embedder.embed(texts))

    def keywords(self, doc_vec: np.ndarray, count: int) -> dict[str, Any]:
        """The `count` most relevant, mutually distinct candidates (MMR), phrases before
        their own words, and their similarity to the document."""
        relevance = self.vectors @ doc_vec
        # Ranked past `count`, so that phrases displacing their words leave `count` chosen.
        ranked = mmr(self.vectors, relevance, 3 * count, MMR_RELEVANCE_WEIGHT)
        chosen = prefer_phrases(self.texts, ranked, count) if count > 0 else []
        return {
            "keywords": [self.texts[i] for i in chosen],
            "keyword_scores": {self.texts[i]: round(float(relevance[i]), 4) for i in chosen},
        }

    def title_within(self, first: int, stop: int, chapter_vec: np.ndarray) -> str | None:
        """The candidate of sentences [first, stop) closest to the chapter, capitalised."""
        inside = [
            i for i, sents in enumerate(self.sentences) if any(first <= s < stop for s in sents)
        ]
        if not inside:
            return None
        best = self.texts[inside[int(np.argmax(self.vectors[inside] @ chapter_vec))]]
        return best[:1].upper() + best[1:]


def prefer_phrases(texts: Sequence[str], ranked: Sequence[int], count: int) -> list[int]:
    """The first `count` of `ranked`, where a multi-word text displaces its own one-word
    texts: those chosen before it are dropped, those after it skipped."""
    chosen: list[int] = []
    covered: set[str] = set()
    for i in ranked:
        words = texts[i].lower().split()
        if len(words) == 1 and words[0] in covered:
            continue
        if len(words) > 1:
            covered.update(words)
            chosen = [c for c in chosen if texts[c].lower() not in covered]
        chosen.append(i)
        if len(chosen) >= count:
            break
    return chosen


def mmr(vectors: np.ndarray, relevance: np.ndarray, k: int, weight: float) -> list[int]:
    """Maximal Marginal Relevance: pick up to k rows, each maximising
    weight * relevance - (1 - weight) * (its highest similarity to a row already picked)."""
    if k <= 0 or not len(relevance):
        return []
    chosen = [int(np.argmax(relevance))]
    redundancy = vectors @ vectors[chosen[0]]
    while len(chosen) < min(k, len(relevance)):
        gain = weight * relevance - (1 - weight) * redundancy
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
        redundancy = np.maximum(redundancy, vectors @ vectors[chosen[-1]])
    return chosen
