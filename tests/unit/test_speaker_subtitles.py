"""Diarized transcripts in SRT, WebVTT and TXT: each cue labelled with its one speaker
(`Speaker 1: `, `<v Speaker 1>`), cues cut where the words change speaker, one TXT
paragraph per speaker turn; clip subtitles labelled too; without speakers, unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from deployments.openai_responses import render
from pipeline.clips.stage import clip_segments
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.subtitles import cues, to_srt, to_txt, to_vtt
from storage.models import Job, JobStatus, JobType
from tests.unit.test_subtitles import parse_srt, parse_vtt


def seg(i: int, start: float, words: Sequence[tuple[float, str, str | None]], speaker: str | None,
        end: float | None = None) -> Segment:  # fmt: skip
    """A segment of (start, word, speaker) words, each word 0.4 s long."""
    timed = tuple(Word(t, t + 0.4, f" {w}", 0.9, s) for t, w, s in words)
    return Segment(
        id=i,
        start_s=start,
        end_s=end if end is not None else timed[-1].end_s,
        text="".join(w.word for w in timed),
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        compression_ratio=1.2,
        words=timed,
        speaker=speaker,
    )


S1, S2 = "Speaker 1", "Speaker 2"
SEGMENTS = (
    seg(0, 0.0, [(0.0, "Hello", S1), (0.5, "there.", S1)], S1),
    seg(1, 1.0, [(1.0, "How", S1), (1.5, "are", S1), (2.0, "you?", S1)], S1),
    seg(2, 3.0, [(3.0, "Fine,", S2), (3.5, "thanks.", S2)], S2),
    # one segment whose last words are another speaker's: cut there
    seg(3, 4.0, [(4.0, "Good", S1), (4.5, "to", S1), (5.0, "hear.", S1), (5.5, "Yes.", S2)], S1),
)
RESULT = TranscriptResult(
    text="".join(s.text for s in SEGMENTS),
    segments=SEGMENTS,
    language="en",
    language_probability=1.0,
    duration_s=6.0,
)


def test_srt_prefixes_each_cue_with_its_speaker() -> None:
    parsed = parse_srt(to_srt(SEGMENTS))
    assert [c.lines for c in parsed] == [
        ["Speaker 1: Hello there."],
        ["Speaker 1: How are you?"],
        ["Speaker 2: Fine, thanks."],
        ["Speaker 1: Good to hear."],
        ["Speaker 2: Yes."],
    ]
    # the cut falls on the first word of the other speaker; the segment's span is kept
    assert (parsed[3].start_s, parsed[3].end_s) == (4.0, 5.5)
    assert (parsed[4].start_s, parsed[4].end_s) == (5.5, 5.9)


def test_vtt_uses_voice_spans_escaped() -> None:
    text = to_vtt(SEGMENTS)
    parsed = parse_vtt(text)
    assert [c.lines[0] for c in parsed] == [
        "<v Speaker 1>Hello there.",
        "<v Speaker 1>How are you?",
        "<v Speaker 2>Fine, thanks.",
        "<v Speaker 1>Good to hear.",
        "<v Speaker 2>Yes.",
    ]
    odd = replace(SEGMENTS[0], speaker="A&B <x>", words=())
    assert "<v A&amp;B &lt;x&gt;>Hello there." in to_vtt([odd])
    assert "A&B <x>: Hello there." in to_srt([odd])


def test_a_long_turn_keeps_its_label_on_every_cue() -> None:
    words = [(k * 0.5, f"word{k}", S2) for k in range(30)]
    long = seg(0, 0.0, words, S2)
    labelled = cues([long], max_line_chars=20, max_lines=1)
    assert len(labelled) > 3 and {c.speaker for c in labelled} == {S2}
    assert all(c.lines[0].startswith("Speaker 2: ") for c in parse_srt(to_srt([long], 20, 1)))


def test_labelled_lines_keep_to_the_line_length() -> None:
    """The "Speaker 2: " prefix counts: no SRT line is longer than max_line_chars."""
    text = "the council will meet again on a sunny morning to talk about the bridge and the plans"
    words = [(k * 0.4, w, S2) for k, w in enumerate(text.split(" "))]
    long = seg(0, 0.0, words, S2)
    for width in (42, 30):
        lines = [line for c in parse_srt(to_srt([long], width, 2)) for line in c.lines]
        assert len(lines) > 2 and all(len(line) <= width for line in lines), lines
        assert " ".join(lines).replace("Speaker 2: ", "") == long.text.strip()


def test_txt_is_one_paragraph_per_turn() -> None:
    assert to_txt(RESULT) == (
        "Speaker 1: Hello there. How are you?\n\n"
        "Speaker 2: Fine, thanks.\n\n"
        "Speaker 1: Good to hear.\n\n"
        "Speaker 2: Yes.\n"
    )


def test_without_speakers_nothing_changes() -> None:
    plain = tuple(
        replace(s, speaker=None, words=tuple(replace(w, speaker=None) for w in s.words))
        for s in SEGMENTS
    )
    assert "Speaker" not in to_srt(plain) + to_vtt(plain)
    assert [c.lines for c in parse_srt(to_srt(plain))][3] == ["Good to hear. Yes."]
    assert to_txt(replace(RESULT, segments=plain)) == (
        "Hello there.\nHow are you?\nFine, thanks.\nGood to hear. Yes.\n"
    )
    assert all(c.speaker is None for c in cues(plain))


def test_clip_subtitles_carry_the_labels() -> None:
    inside = clip_segments(SEGMENTS, 2.9, 6.0)
    assert [c.lines for c in parse_srt(to_srt(inside))] == [
        ["Speaker 2: Fine, thanks."],
        ["Speaker 1: Good to hear."],
        ["Speaker 2: Yes."],
    ]


def test_openai_verbose_json_and_srt_pass_the_speaker_through() -> None:
    job = _job([s.to_dict() for s in SEGMENTS])
    body, _ = render(job, "verbose_json", "transcribe", ["word", "segment"])
    assert isinstance(body, dict)
    assert [s["speaker"] for s in body["segments"]] == [S1, S1, S2, S1]
    assert body["words"][-1] == {"word": "Yes.", "start": 5.5, "end": 5.9, "speaker": S2}
    srt, _ = render(job, "srt")
    assert isinstance(srt, str) and "Speaker 2: Fine, thanks." in srt
    plain = _job([_unlabelled(s) for s in SEGMENTS])
    body, _ = render(plain, "verbose_json", "transcribe", ["word", "segment"])
    assert isinstance(body, dict)
    assert not any("speaker" in s for s in body["segments"] + body["words"])


def _job(segments: list[dict[str, Any]]) -> Job:
    return Job(
        youtube_url="upload://x",
        job_type=JobType.transcription,
        status=JobStatus.completed,
        transcript=RESULT.text,
        segments=segments,
        language="en",
        duration=6.0,
    )


def _unlabelled(segment: Segment) -> dict[str, Any]:
    data = segment.to_dict()
    data.pop("speaker")
    for word in data["words"]:
        word.pop("speaker")
    return data
