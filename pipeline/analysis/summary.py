"""The extractive summary of the analysis stage: sentences of the transcript, in spoken order.

- Length: `options.summary_sentences` when set; otherwise one sentence per
  `WORDS_PER_SENTENCE` words of transcript, between `MIN_SENTENCES` and `MAX_SENTENCES`.
- One chapter: the sentences nearest the document vector (near-duplicates skipped).
- Several chapters: the sentences are shared out over the chapters in proportion to their
  words (largest remainder), every chapter with at least `CHAPTER_MIN_SHARE` of the words
  getting one at least (when there are fewer sentences than such chapters, the longest
  chapters get them); each chapter gives its sentences nearest its own vector.
Sentences under `MIN_WORDS` words, and sentences holding a word Whisper was unsure of
(`keywords.unsure_words`), are left out when the chapter has others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.analysis.keywords import normalise_word

MIN_WORDS = 5
MAX_OVERLAP = 0.9  # cosine above which a sentence repeats one already picked
WORDS_PER_SENTENCE = 150
MIN_SENTENCES = 3
MAX_SENTENCES = 10
CHAPTER_MIN_SHARE = 0.15


def summary_length(words: int, requested: int | None) -> int:
    """Sentences in the summary: `requested`, else one per WORDS_PER_SENTENCE words, clamped."""
    if requested is not None:
        return max(0, requested)
    return min(MAX_SENTENCES, max(MIN_SENTENCES, round(words / WORDS_PER_SENTENCE)))


def allocate(shares: Sequence[float], count: int, capacity: Sequence[int]) -> list[int]:
    """Sentences per chapter: proportional to `shares`, at least one for every chapter with
    CHAPTER_MIN_SHARE or more, never more than a chapter's `capacity`."""
    n = len(shares)
    big = sorted((c for c in range(n) if shares[c] >= CHAPTER_MIN_SHARE), key=lambda c: -shares[c])
    alloc = [0] * n
    for c in big[:count]:
        alloc[c] = min(1, capacity[c])
    quota = [count * s for s in shares]
    while sum(alloc) < count:
        open_ = [c for c in range(n) if alloc[c] < capacity[c]]
        if not open_:
            break
        alloc[max(open_, key=lambda c: (quota[c] - alloc[c], shares[c]))] += 1
    return alloc


def pick_sentences(
    vectors: np.ndarray,
    weights: np.ndarray,
    ranges: Sequence[tuple[int, int]],
    count: int,
    doubtful: Sequence[bool] = (),
) -> list[int]:
    """Indices of the summary's sentences, in order. `ranges` are the chapters' sentence
    ranges [a, b); `weights` the sentences' word counts; `vectors` unit sentence vectors;
    `doubtful` marks sentences to take only when a chapter has no others."""
    total = float(weights.sum()) or 1.0
    shares = [float(weights[a:b].sum()) / total for a, b in ranges]
    pools = []
    for a, b in ranges:
        idx = np.arange(a, b)
        long_ = np.asarray(weights[a:b] >= MIN_WORDS, np.bool_)
        sure = np.array([not (i < len(doubtful) and doubtful[i]) for i in range(a, b)], np.bool_)
        pools.append(next((idx[k] for k in (long_ & sure, long_, sure) if k.any()), idx))
    alloc = allocate(shares, count, [len(p) for p in pools])
    picked: list[int] = []
    for (a, b), pool, want in zip(ranges, pools, alloc, strict=True):
        centre = weights[a:b] @ vectors[a:b]
        centre = centre / max(float(np.linalg.norm(centre)), 1e-9)
        mine = 0
        for i in pool[np.argsort(-(vectors[pool] @ centre), kind="stable")]:
            if mine >= want:
                break
            if not picked or (vectors[picked] @ vectors[i]).max() < MAX_OVERLAP:
                picked.append(int(i))
                mine += 1
    return sorted(picked)


def summarise(
    sentences: Sequence[str],
    vectors: np.ndarray,
    weights: np.ndarray,
    ranges: Sequence[tuple[int, int]],
    requested: int | None,
    unsure: frozenset[str] = frozenset(),
) -> str:
    """The summary text: see the module docstring."""
    count = summary_length(round(float(weights.sum())), requested)
    doubtful = [any(normalise_word(w) in unsure for w in s.split()) for s in sentences]
    picked = pick_sentences(vectors, weights, ranges, count, doubtful)
    return " ".join(sentences[i] for i in picked)
