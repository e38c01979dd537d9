"""Summary and keyword quality of the analysis stage, with the real offline models (spaCy,
MiniLM, VADER): a summary that covers every subject of a video, keywords without words
Whisper was unsure of, without times and amounts and generic nouns, phrases before words;
and per speaker of a diarized transcript, each speaker's own sentiment and keywords."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from pipeline.analysis.analyze import analyze
from pipeline.analysis.keywords import prefer_phrases, unsure_words
from pipeline.analysis.nlp_models import NlpModels, load_models
from pipeline.analysis.summary import allocate, summary_length
from pipeline.options import AnalyzeOptions

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RELEASE = (
    "Version four of our photo editing app is finally out, and this release is a big one. "
    "The new layer panel lets you group, lock and rename layers with a single click. "
    "We rewrote the export engine, so saving a large image as JPEG is now twice as fast. "
    "The release also fixes the crash that happened when you opened very old project files. "
    "Plugins written for version three still work, although a few menu items have moved. "
    "The update is free for everyone who bought a licence in the last two years. "
    "You can download the installer for Windows, macOS and Linux from the website today. "
    "Please report any bug you find in the issue tracker so the developers can fix it quickly."
)
RESTAURANT = (
    "On Saturday evening we went to the new Italian restaurant near the station for dinner. "
    "The waiter ignored our table for half an hour before he brought the menus. "
    "My risotto arrived cold, and the mushrooms in it tasted like they came from a tin. "
    "The pizza crust was burnt on the bottom and the cheese was rubbery and bland. "
    "When we complained, the manager shrugged and said the chef was very busy that night. "
    "The wine list was overpriced and the glasses on the table were dirty. "
    "The bill was enormous for such a disappointing meal, and the service charge was added. "
    "I would not recommend this restaurant to anyone who cares about food or friendly service."
)
FOOTBALL = (
    "Now let's talk about Sunday's football match between the two city rivals. "
    "The home team started brilliantly and their striker scored a header after ten minutes. "
    "The visitors pressed high and the midfield battle became fierce and physical. "
    "Just before half time the referee gave a penalty for a clumsy tackle in the box. "
    "The goalkeeper dived the right way and saved the penalty, and the fans went wild. "
    "In the second half the coach brought on two young substitutes to chase a winner. "
    "A late corner kick was headed in by the captain, and the stadium exploded with noise. "
    "The league table now shows the home side in first place with a three point lead."
)
PASSAGES = (RELEASE, RESTAURANT, FOOTBALL)


def sentences_of(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text.strip())


def segments_with_words(
    text: str, probabilities: dict[str, float] | None = None
) -> list[dict[str, object]]:
    """One segment per sentence with Whisper-like words (leading space, punctuation kept);
    a word's probability is 0.95 unless `probabilities` names it (lower case, no punctuation)."""
    segments: list[dict[str, object]] = []
    t = 0.0
    for sentence in sentences_of(text):
        words = []
        for token in sentence.split():
            key = re.sub(r"^\W+|\W+$", "", token.lower())
            p = (probabilities or {}).get(key, 0.95)
            words.append({"start": t, "end": t + 0.4, "word": " " + token, "probability": p})
            t += 0.4
        segments.append({"start": words[0]["start"], "end": t, "text": sentence, "words": words})
        t += 0.3
    return segments


@pytest.fixture(scope="module")
def models() -> NlpModels:
    return load_models()


def test_three_topic_summary_covers_each_topic_in_order(models: NlpModels) -> None:
    text = " ".join(PASSAGES)
    result = analyze(text, segments_with_words(text), AnalyzeOptions(), models)
    assert len(result.chapters) == 3, [c.title for c in result.chapters]
    picked = [s for s in sentences_of(text) if s in result.summary]
    owners = [next(p for p, passage in enumerate(PASSAGES) if s in passage) for s in picked]
    assert set(owners) == {0, 1, 2}, result.summary
    assert owners == sorted(owners), result.summary  # in spoken order
    assert len(picked) == summary_length(result.word_count, None)


def test_summary_length_setting_and_default() -> None:
    assert summary_length(100, None) == 3
    assert summary_length(1500, None) == 10
    assert summary_length(900, None) == 6
    assert summary_length(900, 2) == 2
    # Two sentences for three chapters over 15%: the two longest get them.
    assert allocate([0.2, 0.5, 0.3], 2, [5, 5, 5]) == [0, 1, 1]
    # A short chapter (under 15%) gets none unless its share earns one.
    assert allocate([0.1, 0.45, 0.45], 3, [5, 5, 5]) == [0, 2, 1]
    assert allocate([0.9, 0.1], 4, [2, 9]) == [2, 2]  # capacity caps a chapter


def test_single_topic_summary_is_the_central_sentences(models: NlpModels) -> None:
    result = analyze(RESTAURANT, [], AnalyzeOptions(summary_sentences=2), models)
    picked = [s for s in sentences_of(RESTAURANT) if s in result.summary]
    assert len(picked) == 2 and len(result.chapters) == 1


def test_summary_avoids_a_sentence_with_an_unsure_word(models: NlpModels) -> None:
    options = AnalyzeOptions(summary_sentences=1)
    sure = analyze(RESTAURANT, segments_with_words(RESTAURANT), options, models).summary
    word = max(re.findall(r"[a-z]+", sure.lower()), key=len)  # a word of that sentence
    assert sum(word in s.lower().split() for s in sentences_of(RESTAURANT)) == 1, word
    segments = segments_with_words(RESTAURANT, {word: 0.2})
    doubtful = analyze(RESTAURANT, segments, options, models).summary
    assert doubtful and doubtful != sure and word not in doubtful.lower()


def test_unsure_word_never_becomes_a_keyword(models: NlpModels) -> None:
    options = AnalyzeOptions(max_keywords=10)
    sure = analyze(RESTAURANT, segments_with_words(RESTAURANT), options, models)
    assert any("restaurant" in k.lower() for k in sure.keywords), sure.keywords
    unsure = segments_with_words(RESTAURANT, {"restaurant": 0.3})
    assert "restaurant" in unsure_words(unsure)
    doubtful = analyze(RESTAURANT, unsure, options, models)
    assert doubtful.keywords and not any("restaurant" in k.lower() for k in doubtful.keywords)
    assert not any("restaurant" in c.title.lower() for c in doubtful.chapters)


def test_topics_ignore_unsure_words(models: NlpModels) -> None:
    sport = ["The striker, the goal and the penalty for the referee at the stadium.",
             "Football league match for the coach and the fans.",
             "The goalkeeper, the header and the tackle in midfield.",
             "A penalty kick and a goal for the striker in the league."]  # fmt: skip
    text = RESTAURANT + " " + " ".join(sport)
    heard = analyze(text, segments_with_words(text), AnalyzeOptions(), models)
    assert "football" in heard.topics, heard.topics
    misheard = {w: 0.1 for s in sport for w in re.findall(r"[a-z]+", s.lower()) if len(w) > 3}
    doubtful = analyze(text, segments_with_words(text, misheard), AnalyzeOptions(), models)
    assert "football" not in doubtful.topics and "restaurants" in doubtful.topics


def test_unsure_words_need_every_occurrence_below_threshold() -> None:
    segments: list[dict[str, Any]] = [
        {"text": "a b", "words": [{"word": " Fore-dessert,", "probability": 0.2}]},
        {"text": "c", "words": [{"word": " risotto", "probability": 0.3}]},
        {"text": "d", "words": [{"word": " Risotto.", "probability": 0.9}]},
        {"text": "e"},  # no words: a transcript from an engine without word timings
    ]
    assert unsure_words(segments) == frozenset({"fore-dessert"})


def test_times_amounts_and_generic_nouns_are_not_keywords(models: NlpModels) -> None:
    text = (
        "Three weeks ago the team shipped the new compiler release. "
        "The result surprised everyone, because the compiler release was ready in two days. "
        "For weeks people asked about the compiler, and the result was a faster build. "
        "Ten percent of the users tested the release candidate on Monday morning. "
        "The thing about the compiler release is that the build cache finally works. "
        "Every week the build cache saves hours, and the result shows in every pipeline."
    )
    result = analyze(text, [], AnalyzeOptions(max_keywords=10), models)
    words = {w for k in result.keywords for w in k.lower().split()}
    assert result.keywords
    for noise in ("weeks", "week", "result", "days", "monday", "morning", "percent", "thing"):
        assert noise not in words, result.keywords
    assert "people" not in result.keywords


def test_a_phrase_beats_its_single_words(models: NlpModels) -> None:
    text = (
        "The build cache makes every build faster. "
        "Without the build cache each build starts from nothing. "
        "A cold build cache is slow, but a warm build cache is quick. "
        "We measured the build cache on the release branch."
    )
    result = analyze(text, [], AnalyzeOptions(max_keywords=5), models)
    lowered = [k.lower() for k in result.keywords]
    assert "build cache" in lowered, lowered
    assert "build" not in lowered and "cache" not in lowered, lowered
    texts = ["build", "build cache", "cache", "release"]
    assert prefer_phrases(texts, [0, 2, 1, 3], 3) == [1, 3]
    assert prefer_phrases(texts, [0, 3], 1) == [0]


# --- per speaker (pipeline/analysis/speakers.py): a diarized transcript's speakers each get
# talk time, share, turns, words, first start, and their own sentiment and keywords; the
# language and option skips apply; an undiarized transcript has no `speakers` key at all.

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
