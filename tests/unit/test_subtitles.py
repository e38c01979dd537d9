"""SRT, WebVTT, TXT and JSON artifacts: exact formats, wrapping, cue splitting."""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.subtitles import (
    format_timestamp,
    segment_cues,
    to_json,
    to_srt,
    to_txt,
    to_vtt,
    write_subtitles,
)
from pipeline.transcription.whisper_engines import FasterWhisperEngine
from pipeline.types import CancelToken
from tests.fixtures.speech import SpeechSample, normalise_words

SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"


@dataclass(frozen=True)
class ParsedCue:
    number: int | None
    start_s: float
    end_s: float
    lines: list[str]


def _seconds(match: tuple[str, ...]) -> float:
    hours, minutes, seconds, millis = (int(part) for part in match)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse_srt(text: str) -> list[ParsedCue]:
    """A strict SubRip reader: any deviation from the format fails the test."""
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    cues = []
    for block in text.rstrip("\n").split("\n\n"):
        number, timing, *lines = block.split("\n")
        match = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", timing)
        assert match, timing
        assert lines and all(line.strip() for line in lines)
        groups = match.groups()
        cues.append(ParsedCue(int(number), _seconds(groups[:4]), _seconds(groups[4:]), lines))
    return cues


def parse_vtt(text: str) -> list[ParsedCue]:
    """A strict WebVTT reader for a file with at least one cue (`to_vtt([])` is tested as
    it is): any deviation from the format fails the test."""
    assert text.startswith("WEBVTT\n\n") and text.endswith("\n")
    assert not text.endswith("\n\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n") :].rstrip("\n").split("\n\n"):
        timing, *lines = block.split("\n")
        match = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", timing)
        assert match, timing
        assert lines and all(line.strip() for line in lines)
        groups = match.groups()
        cues.append(ParsedCue(None, _seconds(groups[:4]), _seconds(groups[4:]), lines))
    return cues


def segment(
    id: int, start_s: float, end_s: float, text: str, *, with_words: bool = True
) -> Segment:
    words: tuple[Word, ...] = ()
    if with_words:
        tokens = text.split()
        step = (end_s - start_s) / len(tokens)
        words = tuple(
            Word(start_s + i * step, start_s + (i + 1) * step, f" {token}", 0.9)
            for i, token in enumerate(tokens)
        )
    return Segment(id, start_s, end_s, text, -0.2, 0.05, 1.3, words)


def result_of(*segments: Segment) -> TranscriptResult:
    return TranscriptResult(
        text=" ".join(s.text for s in segments),
        segments=segments,
        language="en",
        language_probability=1.0,
        duration_s=segments[-1].end_s if segments else 0.0,
    )


LONG = (
    "Scientists measured the temperature of the ocean at several different depths "
    "and found that the deepest water was much colder than anyone had expected before "
    "the expedition set out from the harbour last spring."
)


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(3723.456) == "01:02:03,456"
    assert format_timestamp(59.9996) == "00:01:00,000"
    assert format_timestamp(1.5, ".") == "00:00:01.500"
    assert format_timestamp(-0.2) == "00:00:00,000"
    assert format_timestamp(100 * 3600 + 0.001) == "100:00:00,001"


def test_srt_exact() -> None:
    segments = [
        segment(0, 0.0, 2.5, "Hello there."),
        segment(1, 3.04, 3723.4567, "General Kenobi!", with_words=False),
    ]
    assert to_srt(segments) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n"
        "\n"
        "2\n00:00:03,040 --> 01:02:03,457\nGeneral Kenobi!\n"
    )


def test_vtt_exact() -> None:
    segments = [segment(0, 0.0, 2.5, "Hello there."), segment(1, 3.04, 4.2, "A <b> & c")]
    assert to_vtt(segments) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.000 --> 00:00:02.500\nHello there.\n"
        "\n"
        "00:00:03.040 --> 00:00:04.200\nA &lt;b&gt; &amp; c\n"
    )
    assert to_vtt([]) == "WEBVTT\n"
    assert to_srt([]) == ""


def test_wrapping_two_lines_at_word_boundaries() -> None:
    text = "Please remember to water the plants in the garden every evening this week."
    srt = to_srt([segment(0, 1.0, 5.0, text)])
    (cue,) = parse_srt(srt)
    assert cue.lines == [
        "Please remember to water the plants in the",
        "garden every evening this week.",
    ]
    assert (cue.start_s, cue.end_s) == (1.0, 5.0)


@pytest.mark.parametrize("with_words", [True, False])
def test_long_segment_becomes_several_cues(with_words: bool) -> None:
    seg = segment(0, 10.0, 25.0, LONG, with_words=with_words)
    cues = parse_srt(to_srt([seg]))
    assert len(cues) == 3  # 176 characters: five lines of at most 42
    assert [c.number for c in cues] == [1, 2, 3]
    assert cues[0].start_s == 10.0 and cues[-1].end_s == 25.0
    for before, after in itertools.pairwise(cues):
        assert before.end_s == after.start_s  # contiguous
    assert all(len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines) for c in cues)
    assert " ".join(line for c in cues for line in c.lines) == LONG
    words = LONG.split()
    chars_before = 0
    for before, cue in itertools.pairwise(cues):
        chars_before += sum(len(word) for line in before.lines for word in line.split())
        first_word_index = len(
            " ".join(line for c in cues[: cues.index(cue)] for line in c.lines).split()
        )
        assert cue.lines[0].split()[0] == words[first_word_index]
        if with_words:  # the boundary is that word's start time
            expected = seg.words[first_word_index].start_s
        else:  # proportional to the characters before it
            expected = 10.0 + 15.0 * chars_before / sum(len(word) for word in words)
        assert cue.start_s == pytest.approx(expected, abs=0.001)


def test_custom_limits_and_very_long_words() -> None:
    seg = segment(0, 0.0, 6.0, "a " + "x" * 30 + " b c d e f g h", with_words=False)
    cues = segment_cues(seg, max_line_chars=10, max_lines=1)
    # The long word is cut into lines of 10; times go by the characters before each cue.
    assert [cue.lines for cue in cues] == [
        ("a",), ("x" * 10,), ("x" * 10,), ("x" * 10,), ("b c d e f",), ("g h",),
    ]  # fmt: skip
    edges = [6.0 * chars / 38 for chars in (0, 1, 11, 21, 31, 36, 38)]
    assert [cue.start_s for cue in cues] == pytest.approx(edges[:-1])
    assert [cue.end_s for cue in cues] == pytest.approx(edges[1:])
    with pytest.raises(ValueError):
        segment_cues(seg, max_line_chars=0)


def test_words_without_leading_space_join_the_previous_word() -> None:
    words = (Word(0.0, 0.5, " Hello", 0.9), Word(0.5, 0.7, ",", 0.9), Word(0.8, 1.0, " 世界", 0.9))
    seg = Segment(0, 0.0, 1.0, "Hello, 世界", -0.1, 0.0, 1.0, words)
    assert segment_cues(seg)[0].lines == ("Hello, 世界",)


def test_srt_text_never_holds_an_arrow() -> None:
    srt = to_srt([segment(0, 0.0, 1.0, "a --> b", with_words=False)])
    assert parse_srt(srt)[0].lines == ["a -> b"]


def test_txt_and_json() -> None:
    result = result_of(segment(0, 0.0, 1.0, "One."), segment(1, 1.0, 2.0, "Two."))
    assert to_txt(result) == "One.\nTwo.\n"
    assert to_txt(result_of()) == ""
    data = json.loads(to_json(result))
    assert data["text"] == "One. Two."
    assert data["segments"][1] == {
        "id": 1,
        "start": 1.0,
        "end": 2.0,
        "text": "Two.",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.05,
        "compression_ratio": 1.3,
        "words": [{"start": 1.0, "end": 2.0, "word": " Two.", "probability": 0.9}],
    }
    assert TranscriptResult.from_dict(data) == result


def test_write_subtitles(tmp_path: Path) -> None:
    result = result_of(segment(0, 0.0, 1.0, "One."))
    paths = write_subtitles(result, tmp_path / "out")
    assert {key: path.name for key, path in paths.items()} == {
        "json": "transcript.json",
        "srt": "transcript.srt",
        "vtt": "transcript.vtt",
        "txt": "transcript.txt",
    }
    assert sorted(os.listdir(tmp_path / "out")) == sorted(p.name for p in paths.values())
    assert paths["srt"].read_text(encoding="utf-8") == to_srt(result.segments)
    assert paths["vtt"].read_text(encoding="utf-8") == to_vtt(result.segments)
    assert paths["txt"].read_text(encoding="utf-8") == to_txt(result)
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == result.to_dict()


def test_subtitles_of_a_real_transcript(speech_sample: SpeechSample, tmp_path: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = FasterWhisperEngine("tiny.en")
    result = engine.transcribe(
        speech_sample.path, TranscribeOptions(), lambda *_: None, CancelToken()
    )
    paths = write_subtitles(result, tmp_path)
    srt = parse_srt(paths["srt"].read_text(encoding="utf-8"))
    vtt = parse_vtt(paths["vtt"].read_text(encoding="utf-8"))
    assert [cue.number for cue in srt] == list(range(1, len(srt) + 1))
    assert [(c.start_s, c.end_s, c.lines) for c in srt] == [
        (c.start_s, c.end_s, c.lines) for c in vtt
    ]
    # every segment fits one cue here, so cue times are the segment times (to the ms)
    assert len(srt) == len(result.segments)
    for cue, seg in zip(srt, result.segments, strict=True):
        assert cue.start_s == pytest.approx(seg.start_s, abs=0.0005)
        assert cue.end_s == pytest.approx(seg.end_s, abs=0.0005)
        assert all(len(line) <= 42 for line in cue.lines)
        assert normalise_words(" ".join(cue.lines)) == normalise_words(seg.text)
    assert paths["txt"].read_text(encoding="utf-8").splitlines() == [
        s.text for s in result.segments
    ]
