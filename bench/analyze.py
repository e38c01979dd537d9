"""Analysis stage timing: model load once, then transcripts of 1,000 and 10,000 words.

    PYTHONPATH=. .venv/bin/python bench/analyze.py [--repeat 3] [--sentiment-model PATH]
    [--smoke]

(`python -m bench.analyze` works too.) `--smoke`: one run of 200 words and one quality
transcript, to check that the script still runs.

The transcripts are synthetic speech-like text that changes subject every 12-30 sentences
(cooking, football, software, finance, travel, health), with one timed segment per sentence,
so every part of the analysis (chapters, keywords, timeline) has real work to do. The target
on the 2-core development machine is 10,000 words in at most 5 s after the models are loaded.

A second table measures quality (`bench/analyze_quality.py`) on transcripts of three or four
passages of known subjects, whose segments carry Whisper-like word probabilities: a
"misheard" word ("fore-dessert", probability 0.2) recurs in every passage, as do time
expressions.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import get_args

if not __package__:  # `python bench/analyze.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.analyze_quality import HEADER, Passage, measure, row
from pipeline.analysis.analyze import analyze
from pipeline.analysis.nlp_models import NlpModels, Precision, load_models
from pipeline.options import AnalyzeOptions


def _words(text: str) -> list[str]:
    return text.split()


_SUBJECTS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # subject: (nouns, adjectives, verbs)
    "cooking": (
        _words(
            "sauce garlic onion pan oven recipe dough butter flour pasta tomato basil chicken "
            "soup spice knife kitchen salt pepper cheese"
        ),
        _words("fresh crispy golden creamy spicy tender hot sweet savory delicious"),
        _words("chop stir bake simmer season fry whisk taste pour slice"),
    ),
    "football": (
        _words(
            "match goal striker keeper referee penalty league coach stadium midfield defender "
            "season fans tactics corner header transfer captain pitch club"
        ),
        _words("late brilliant sloppy decisive physical fast defensive crucial young tired"),
        _words("score defend pass tackle shoot press concede attack celebrate substitute"),
    ),
    "software": (
        _words(
            "server database query function module test release bug deployment api cache "
            "container pipeline commit branch compiler library framework endpoint config"
        ),
        _words("slow stable flaky async remote legacy typed distributed cached small"),
        _words("deploy refactor compile merge debug profile test release configure install"),
    ),
    "finance": (
        _words(
            "portfolio stock bond dividend interest inflation budget savings loan mortgage tax "
            "fund market bank return fee credit debt index pension"
        ),
        _words("volatile safe expensive diversified monthly annual risky cheap steady global"),
        _words("invest save borrow lend spend budget hedge allocate withdraw compound"),
    ),
    "travel": (
        _words(
            "flight hotel passport beach museum train ticket luggage island city tour guide "
            "airport map hostel visa coast mountain village border"
        ),
        _words("crowded quiet cheap scenic remote historic long overnight sunny busy"),
        _words("fly book pack explore visit wander hike cross reserve arrive"),
    ),
    "health": (
        _words(
            "doctor patient symptom vaccine hospital nurse diagnosis treatment medicine sleep "
            "heart blood pressure diet exercise therapy clinic pain infection dose"
        ),
        _words("chronic mild severe healthy regular early clinical daily gentle rare"),
        _words("treat diagnose prescribe recover examine prevent monitor rest heal measure"),
    ),
}
_OPENERS = ["So", "And then", "Honestly,", "Now", "I think", "You know,", "Basically", "Well,"]
_TEMPLATES = [
    "{o} the {a} {n1} is what makes the {n2} work.",
    "{o} we {v} the {n1} before we {v2} the {a} {n2}.",
    "{o} a {a} {n1} can {v} the whole {n2} if you are not careful.",
    "{o} my {n1} was {a} today, so I had to {v} the {n2} again.",
    "{o} people ask me how to {v} a {a} {n1} without a {n2}.",
    "{o} the {n1} and the {n2} were both {a} this week, which surprised everyone.",
    "{o} if the {n1} looks {a}, just {v} it and check the {n2} and the {n3}.",
]


def synthetic_transcript(words: int, seed: int = 0) -> tuple[str, list[dict[str, object]]]:
    """Return (text, segments) of about `words` words, one segment per sentence."""
    rng = random.Random(seed)
    sentences: list[str] = []
    count = 0
    while count < words:
        nouns, adjectives, verbs = _SUBJECTS[rng.choice(sorted(_SUBJECTS))]
        for _ in range(rng.randint(12, 30)):
            n1, n2, n3 = rng.sample(nouns, 3)
            v1, v2 = rng.sample(verbs, 2)
            sentence = rng.choice(_TEMPLATES).format(
                o=rng.choice(_OPENERS), a=rng.choice(adjectives), n1=n1, n2=n2, n3=n3, v=v1, v2=v2
            )
            sentences.append(sentence)
            count += len(sentence.split())
            if count >= words:
                break
    segments: list[dict[str, object]] = []
    t = 0.0
    for sentence in sentences:
        duration = len(sentence.split()) / 2.6  # about 156 words per minute
        segments.append({"start": round(t, 2), "end": round(t + duration, 2), "text": sentence})
        t += duration + 0.4
    return " ".join(sentences), segments


_NOISE_TEMPLATE = "{o} the fore-dessert was {a} this week, and so was the {n1}."
NOISY_WORD, NOISY_PROBABILITY = "fore-dessert", 0.2
QUALITY_CASES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("software", 14), ("cooking", 10), ("football", 12)),
    (("travel", 8), ("health", 16), ("finance", 12)),
    (("cooking", 10), ("finance", 10), ("travel", 10), ("football", 10)),
    (("football", 24), ("software", 5), ("health", 11)),
)


def multi_topic_transcript(
    plan: tuple[tuple[str, int], ...], seed: int = 0
) -> tuple[str, list[dict[str, object]], list[Passage]]:
    """(text, segments with words, passages): passages of the given subjects and sentence
    counts, every third sentence of each from `_NOISE_TEMPLATE`."""
    rng = random.Random(seed)
    passages = []
    for subject, count in plan:
        nouns, adjectives, verbs = _SUBJECTS[subject]
        sentences = []
        for k in range(count):
            n1, n2, n3 = rng.sample(nouns, 3)
            v1, v2 = rng.sample(verbs, 2)
            template = _NOISE_TEMPLATE if k % 3 == 1 else rng.choice(_TEMPLATES)
            fill = {"o": rng.choice(_OPENERS), "a": rng.choice(adjectives), "v": v1, "v2": v2}
            sentences.append(template.format(n1=n1, n2=n2, n3=n3, **fill))
        passages.append(Passage(subject, sentences, frozenset(nouns)))
    segments: list[dict[str, object]] = []
    t = 0.0
    for sentence in (s for p in passages for s in p.sentences):
        words: list[dict[str, object]] = []
        start = t
        for token in sentence.split():
            p = NOISY_PROBABILITY if token.strip(".,").lower() == NOISY_WORD else 0.9
            span = {"start": round(t, 2), "end": round(t + 0.38, 2)}
            words.append({**span, "word": " " + token, "probability": p})
            t += 0.385
        segments.append({"start": round(start, 2), "end": round(t, 2), "text": sentence})
        segments[-1]["words"] = words
        t += 0.4
    return " ".join(s for p in passages for s in p.sentences), segments, passages


def print_quality(models: NlpModels, options: AnalyzeOptions, smoke: bool) -> None:
    print(f"\n{HEADER}\n|---|---|---|---|---|---|---|---|")
    for case, plan in enumerate(QUALITY_CASES[:1] if smoke else QUALITY_CASES):
        text, segments, passages = multi_topic_transcript(plan, seed=case)
        result = analyze(text, segments, options, models)
        name = " + ".join(f"{subject} {n}" for subject, n in plan)
        print(row(name, result.word_count, measure(result, passages)), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sentiment-model", default=None)
    parser.add_argument("--precision", default="auto", choices=get_args(Precision))
    parser.add_argument("--smoke", action="store_true", help="one run of 200 words")
    args = parser.parse_args(argv)
    sizes = (200,) if args.smoke else (1_000, 10_000)
    repeat = 1 if args.smoke else args.repeat

    t0 = time.perf_counter()
    models = load_models(sentiment_model=args.sentiment_model, precision=args.precision)
    print(
        f"model load: {time.perf_counter() - t0:.2f} s (spaCy, MiniLM in "
        f"{models.embedder.dtype}, {models.sentiment.name}, taxonomy embeddings)\n"
    )
    options = AnalyzeOptions()
    analyze("A short warm-up sentence about cooking pasta.", [], options, models)

    print("| words | segments | median s | best s | runs | chapters | topics | sentiment |")
    print("|---|---|---|---|---|---|---|---|")
    for words in sizes:
        text, segments = synthetic_transcript(words, seed=words)
        timings = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = analyze(text, segments, options, models)
            timings.append(time.perf_counter() - t0)
        print(
            f"| {result.word_count} | {len(segments)} | {statistics.median(timings):.2f} "
            f"| {min(timings):.2f} | {repeat} | {len(result.chapters)} | "
            f"{', '.join(result.topics)} | {result.sentiment} |",
            flush=True,
        )

    print_quality(models, options, args.smoke)


if __name__ == "__main__":
    main()
