"""Quality figures for `bench/analyze.py`: how well a summary and keywords represent a
transcript made of known passages, each with a hand-made list of its expected terms.

- passages in summary: the share of passages with at least `summary.CHAPTER_MIN_SHARE` of
  the words that give the summary at least one sentence;
- keywords on list: the share of keywords with a word in the expected terms of the passages;
- noise keywords: keywords holding a word given low probability (a "misheard" word) or a
  time expression the generator put in ("this week", "last month").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.analysis.analyze import AnalysisResult
from pipeline.analysis.summary import CHAPTER_MIN_SHARE

NOISE_WORDS = frozenset({"fore-dessert", "week", "weeks", "month", "months", "today"})


@dataclass(frozen=True)
class Passage:
    subject: str
    sentences: list[str]
    expected: frozenset[str]  # the hand-made terms of this passage's subject


@dataclass(frozen=True)
class Quality:
    passages: int
    chapters: int
    passages_in_summary: float
    summary_sentences: int
    keywords_on_list: float
    noise_keywords: int


def measure(result: AnalysisResult, passages: Sequence[Passage]) -> Quality:
    words = [sum(len(s.split()) for s in p.sentences) for p in passages]
    total = sum(words) or 1
    counted = [p for p, w in zip(passages, words, strict=True) if w / total >= CHAPTER_MIN_SHARE]
    covered = [p for p in counted if any(s in result.summary for s in p.sentences)]
    expected = frozenset().union(*(p.expected for p in passages))
    kw_words = [set(k.lower().split()) for k in result.keywords]
    on_list = sum(bool(ws & expected) for ws in kw_words)
    noise = sum(bool(ws & NOISE_WORDS) for ws in kw_words)
    picked = sum(s in result.summary for p in passages for s in p.sentences)
    return Quality(
        passages=len(passages),
        chapters=len(result.chapters),
        passages_in_summary=len(covered) / max(len(counted), 1),
        summary_sentences=picked,
        keywords_on_list=on_list / max(len(result.keywords), 1),
        noise_keywords=noise,
    )


HEADER = (
    "| transcript | words | passages | chapters found | passages in summary "
    "| summary sentences | keywords on list | noise keywords |"
)


def row(name: str, words: int, q: Quality) -> str:
    return (
        f"| {name} | {words} | {q.passages} | {q.chapters} | {q.passages_in_summary:.0%} "
        f"| {q.summary_sentences} | {q.keywords_on_list:.0%} | {q.noise_keywords} |"
    )
