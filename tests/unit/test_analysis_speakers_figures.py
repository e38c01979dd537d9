"""The analyze stage gives each speaker the diarization's own figures (talk time, turns,
words: the job's `speakers`), so that `analysis_results.speakers` and the job agree."""

from __future__ import annotations

from typing import Any

from pipeline.stages import with_speaker_figures

ANALYSIS: dict[str, Any] = {
    "sentiment": "positive",
    "speakers": [
        {"speaker": "Speaker 1", "talk_time": 5.0, "talk_share": 0.5, "turns": 2, "words": 9,
         "sentiment": "positive", "keywords": ["bridge"]},
        {"speaker": "Speaker 2", "talk_time": 5.0, "talk_share": 0.5, "turns": 1, "words": 7,
         "sentiment": "negative", "keywords": []},
    ],
}  # fmt: skip
DIARIZED = [
    {"speaker": "Speaker 1", "talk_time": 6.0, "turns": 3, "words": 10},
    {"speaker": "Speaker 2", "talk_time": 2.0, "turns": 2, "words": 6},
]


def test_the_diarization_figures_replace_the_segment_ones() -> None:
    merged = with_speaker_figures(ANALYSIS, DIARIZED)
    one, two = merged["speakers"]
    assert (one["talk_time"], one["turns"], one["words"], one["talk_share"]) == (6.0, 3, 10, 0.75)
    assert (two["talk_time"], two["turns"], two["words"], two["talk_share"]) == (2.0, 2, 6, 0.25)
    assert one["keywords"] == ["bridge"] and two["sentiment"] == "negative"  # analysis kept
    assert merged["sentiment"] == "positive"
    assert ANALYSIS["speakers"][0]["talk_time"] == 5.0  # the input is not changed


def test_without_diarization_figures_the_analysis_is_unchanged() -> None:
    assert with_speaker_figures(ANALYSIS, None) == ANALYSIS
    assert with_speaker_figures({"sentiment": "neutral"}, DIARIZED) == {"sentiment": "neutral"}
    # a speaker the diarization does not list keeps the analysis' own figures
    only_two = with_speaker_figures(ANALYSIS, DIARIZED[1:])
    assert only_two["speakers"][0] == ANALYSIS["speakers"][0]
    assert only_two["speakers"][1]["talk_share"] == 1.0
