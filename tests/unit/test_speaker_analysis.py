"""Per-speaker analysis of a diarized transcript (pipeline/analysis/speakers.py), with the
real offline models (spaCy, MiniLM, VADER): talk time, share, turns, words, first start,
and each speaker's own sentiment and keywords; the language and option skips apply; an
undiarized transcript has no `speakers` key at all."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from pipeline.analysis.analyze import analyze
from pipeline.analysis.nlp_models import NlpModels, load_models
from pipeline.options import AnalyzeOptions

os.environ.setdefault("HF_HUB_OFFLINE", "1")

COOKING = [
    "I absolutely love cooking fresh pasta at home with my family.",
    "The tomato sauce with basil and garlic tastes wonderful and smells amazing.",
    "Baking bread on Sundays is my favourite hobby, it makes me so happy.",
]
TRAFFIC = [
    "The traffic on the motorway this morning was terrible and awful.",
    "I hate sitting in traffic jams, the roadworks make every commute a miserable nightmare.",
    "The motorway traffic made me furious and I was late again, which is horrible.",
]


def segment(speaker: str | None, sentence: str, start: float) -> dict[str, Any]:
    words, t = [], start
    for token in sentence.split():
        words.append({"start": t, "end": t + 0.4, "word": f" {token}", "probability": 0.95})
        t += 0.4
    seg: dict[str, Any] = {"start": start, "end": t, "text": f" {sentence}", "words": words}
    if speaker is not None:
        seg["speaker"] = speaker
        for word in words:
            word["speaker"] = speaker
    return seg


def dialogue(labelled: bool = True) -> list[dict[str, Any]]:
    """Speaker 1 on cooking, then Speaker 2 on traffic, turn by turn: 1, 2, 1, 2, 2, 1."""
    one, two = "Speaker 1", "Speaker 2"
    order = [(one, COOKING[0]), (two, TRAFFIC[0]), (one, COOKING[1]), (two, TRAFFIC[1]),
             (two, TRAFFIC[2]), (one, COOKING[2])]  # fmt: skip
    segments, t = [], 0.5
    for speaker, sentence in order:
        seg = segment(speaker if labelled else None, sentence, t)
        segments.append(seg)
        t = seg["end"] + 0.5
    return segments


def text_of(segments: list[dict[str, Any]]) -> str:
    return "".join(s["text"] for s in segments)


@pytest.fixture(scope="module")
def models() -> NlpModels:
    return load_models()


def test_each_speaker_gets_their_own_sentiment_and_keywords(models: NlpModels) -> None:
    segments = dialogue()
    result = analyze(text_of(segments), segments, AnalyzeOptions(), models).to_dict()
    one, two = result["speakers"]
    assert (one["speaker"], two["speaker"]) == ("Speaker 1", "Speaker 2")
    assert one["sentiment"] == "positive" and one["sentiment_score"] > 0.3
    assert two["sentiment"] == "negative" and two["sentiment_score"] < -0.3
    cooking = " ".join(one["keywords"])
    traffic = " ".join(two["keywords"])
    assert 1 <= len(one["keywords"]) <= 5 and 1 <= len(two["keywords"]) <= 5
    assert re.search(r"pasta|sauce|bread|cooking|basil|garlic", cooking), one["keywords"]
    assert re.search(r"traffic|motorway|commute|roadworks", traffic), two["keywords"]
    assert not re.search(r"traffic|motorway|commute|roadworks", cooking)
    assert not re.search(r"pasta|sauce|bread|basil|garlic", traffic)
    # the figures come from the labelled segments
    assert (one["turns"], two["turns"]) == (3, 2)
    assert one["words"] == sum(len(s.split()) for s in COOKING)
    assert two["words"] == sum(len(s.split()) for s in TRAFFIC)
    talk = {n: sum(s["end"] - s["start"] for s in segments if s["speaker"] == n)
            for n in ("Speaker 1", "Speaker 2")}  # fmt: skip
    assert one["talk_time"] == pytest.approx(talk["Speaker 1"], abs=1e-3)
    assert one["talk_share"] + two["talk_share"] == pytest.approx(1.0, abs=1e-3)
    assert one["talk_share"] == pytest.approx(talk["Speaker 1"] / sum(talk.values()), abs=1e-3)
    assert (one["first_start"], two["first_start"]) == (0.5, segments[1]["start"])


def test_switched_off_parts_stay_off_per_speaker(models: NlpModels) -> None:
    segments = dialogue()
    options = AnalyzeOptions(sentiment_analysis=False, keyword_extraction=False)
    speakers = analyze(text_of(segments), segments, options, models).to_dict()["speakers"]
    assert [s["sentiment"] for s in speakers] == [None, None]
    assert [s["keywords"] for s in speakers] == [[], []]
    assert [s["turns"] for s in speakers] == [3, 2]


def test_a_language_the_models_cannot_read_skips_those_parts(models: NlpModels) -> None:
    segments = dialogue()
    options = AnalyzeOptions(language="de")
    result = analyze(text_of(segments), segments, options, models).to_dict()
    assert {s["part"] for s in result["skipped"]} >= {"sentiment", "keywords"}
    assert [(s["sentiment"], s["keywords"]) for s in result["speakers"]] == [(None, []), (None, [])]
    assert [s["words"] for s in result["speakers"]] == [36, 39]


def test_an_undiarized_transcript_has_no_speakers_key(models: NlpModels) -> None:
    segments = dialogue(labelled=False)
    result = analyze(text_of(segments), segments, AnalyzeOptions(), models).to_dict()
    assert "speakers" not in result and result["sentiment"] in (
        "mixed",
        "neutral",
        "positive",
        "negative",
    )
