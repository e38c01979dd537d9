"""The repetition guard: crafted segment lists, and the real tiny.en on speech with music
and noise inside it (the audio that makes Whisper loop), through `transcribe_audio`."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.engine import transcribe_audio
from pipeline.transcription.repetition import MAX_REPEATS, collapse_repeats
from pipeline.transcription.whisper_engines import FasterWhisperEngine
from pipeline.types import CancelToken
from tests.fixtures.speech import SpeechSample, make_music, make_noise, word_error_rate


def longest_run(text: str, longest_phrase: int = 40) -> tuple[int, str]:
    """(the most times any phrase of the text's words occurs in a row, that phrase), by
    brute force: every start, every phrase length."""
    words = [w for w in re.sub(r"[^\w' ]+", " ", text.lower()).split()]
    best = (1, words[0] if words else "")
    for n in range(1, longest_phrase + 1):
        for i in range(len(words) - n + 1):
            count = 1
            while words[i + count * n : i + (count + 1) * n] == words[i : i + n]:
                count += 1
            best = max(best, (count, " ".join(words[i : i + n])))
    return best


def timed(text: str, start_s: float, word_s: float = 0.4) -> Segment:
    """A segment of `text` whose words last `word_s` each, from `start_s`."""
    tokens = text.split()
    words = tuple(
        Word(start_s + i * word_s, start_s + (i + 1) * word_s, f" {token}", 0.9)
        for i, token in enumerate(tokens)
    )
    end_s = start_s + len(tokens) * word_s
    return Segment(0, start_s, end_s, text, -0.3, 0.01, 1.5, words)


def untimed(text: str, start_s: float) -> Segment:
    return Segment(0, start_s, start_s + 2.0, text, -0.3, 0.01, 1.5)


def transcript(*segments: Segment) -> TranscriptResult:
    numbered = tuple(replace(segment, id=i) for i, segment in enumerate(segments))
    return TranscriptResult(" ".join(s.text for s in numbered), numbered, "en", 1.0, 60.0)


def check(result: TranscriptResult) -> None:
    """Ids in order, text made of the segments', each segment's text its words', times
    inside the words'."""
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    assert result.text == " ".join(s.text for s in result.segments)
    for segment in result.segments:
        if segment.words:
            assert segment.text == "".join(w.word for w in segment.words).strip()
            assert segment.start_s == segment.words[0].start_s
            assert segment.end_s == segment.words[-1].end_s
    assert longest_run(result.text)[0] <= MAX_REPEATS, result.text


def test_nothing_repeated_more_than_twice_is_left_as_it_is() -> None:
    original = transcript(
        timed("Thank you. Thank you.", 0.0), timed("very very good, and so on", 2.0)
    )
    assert collapse_repeats(original) is original


def test_a_loop_inside_a_segment_keeps_two_copies_and_their_times() -> None:
    loop = timed("Thank you. Thank you. Thank you. Thank you. Thank you.", 5.0)
    result = collapse_repeats(transcript(timed("We start here.", 0.0), loop))
    check(result)
    assert result.text == "We start here. Thank you. Thank you."
    kept = result.segments[1]
    assert (kept.start_s, kept.end_s) == (5.0, pytest.approx(5.0 + 4 * 0.4))
    assert len(kept.words) == 4


def test_a_loop_over_segments_drops_the_repeating_segments() -> None:
    segments = [timed("We start here.", 0.0)]
    segments += [timed("I'm going to the shop.", 2.0 + 3 * i) for i in range(6)]
    segments += [timed("And then home.", 20.0)]
    result = collapse_repeats(transcript(*segments))
    check(result)
    texts = [s.text for s in result.segments]
    assert texts == ["We start here.", *["I'm going to the shop."] * 2, "And then home."]
    assert [s.start_s for s in result.segments] == [0.0, 2.0, 5.0, 20.0]


def test_a_loop_across_a_segment_boundary_trims_the_next_segment() -> None:
    result = collapse_repeats(
        transcript(timed("hello there, the end the end", 0.0), timed("the end, the end. Bye", 3.0))
    )
    check(result)
    assert [s.text for s in result.segments] == ["hello there, the end the end", "Bye"]
    assert result.segments[1].start_s == pytest.approx(3.0 + 4 * 0.4)


def test_words_compare_without_case_or_punctuation() -> None:
    result = collapse_repeats(transcript(timed("Go! go, GO. go no", 0.0)))
    check(result)
    assert result.text == "Go! go, no"


def test_segments_without_word_times_are_cut_by_their_text() -> None:
    result = collapse_repeats(
        transcript(untimed("no no no no no no", 0.0), untimed("yes", 2.0), untimed("yes", 4.0))
    )
    check(result)
    assert [s.text for s in result.segments] == ["no no", "yes", "yes"]
    assert result.segments[0].end_s == 2.0  # no words: the segment keeps its times


def test_the_shortest_repeating_phrase_is_the_one_counted() -> None:
    result = collapse_repeats(transcript(untimed("a b a b a b a b c", 0.0)))
    assert result.text == "a b a b c"
    assert collapse_repeats(transcript(untimed("la la la", 0.0))).text == "la la"


# ----------------------------------------------------------------------------- real model


# in the pauses after the clip's second and fourth sentences
CUTS_S = (8.75, 18.3)


@pytest.fixture(scope="module")
def looping_audio(speech_sample: SpeechSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech clip with 8 s of music after its second sentence and 8 s of noise after
    its fourth, as speech interrupted by a jingle and a hiss would be."""
    folder = tmp_path_factory.mktemp("loop")
    music, noise = make_music(folder / "music.wav", 8.0), make_noise(folder / "noise.wav", 8.0)
    out = folder / "looping.wav"
    mono = "aresample=16000,aformat=sample_fmts=fltp:channel_layouts=mono"
    graph = (
        f"[0:a]{mono},asplit=3[s1][s2][s3];[1:a]{mono}[music];[2:a]{mono}[noise];"
        f"[s1]atrim=0:{CUTS_S[0]},asetpts=N/SR/TB[a];"
        f"[s2]atrim={CUTS_S[0]}:{CUTS_S[1]},asetpts=N/SR/TB[b];"
        f"[s3]atrim={CUTS_S[1]},asetpts=N/SR/TB[c];"
        "[a][music][b][noise][c]concat=n=5:v=0:a=1[out]"
    )
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-i", str(speech_sample.path), "-i", str(music), "-i", str(noise),
         "-filter_complex", graph, "-map", "[out]", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


def test_speech_with_music_and_noise_inside_repeats_no_phrase(
    looping_audio: Path, speech_sample: SpeechSample
) -> None:
    """Whisper's loop conditions: no voice filter, each window decoded knowing the text
    before it. No phrase comes out more than twice in a row, and the speech is all there."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = FasterWhisperEngine("tiny.en")
    options = TranscribeOptions(vad_filter=False, condition_on_previous_text=True)
    result = transcribe_audio(looping_audio, engine, options, lambda _f, _m: None, CancelToken())
    check(result)
    assert word_error_rate(speech_sample.text, result.text) < 0.3, result.text


@pytest.fixture(scope="module")
def stuck_audio(speech_sample: SpeechSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech clip with its first half second played 7 times, as a skipping player
    would: "The quick, quick, quick, ..." comes out of tiny.en."""
    out = tmp_path_factory.mktemp("stuck") / "stuck.wav"
    mono = "aresample=16000,aformat=sample_fmts=fltp:channel_layouts=mono"
    graph = (
        f"[0:a]{mono},asplit=2[s1][s2];"
        f"[s1]atrim=0:{STUCK_S},asetpts=N/SR/TB,aloop=loop=6:size=8000[a];"
        f"[s2]atrim={STUCK_S},asetpts=N/SR/TB[b];[a][b]concat=n=2:v=0:a=1[out]"
    )
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-i", str(speech_sample.path), "-filter_complex", graph, "-map", "[out]", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


STUCK_S = 4.3  # the first sentence; its first 8000 samples (0.5 s) are looped


def test_a_phrase_the_model_repeats_is_cut_to_two(stuck_audio: Path) -> None:
    """Deterministic decoding (one temperature): the engine's own output repeats a word
    past twice; what the pipeline's `transcribe_audio` gives back does not."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = FasterWhisperEngine("tiny.en")
    options = TranscribeOptions(temperature=(0.0,))
    raw = engine.transcribe(stuck_audio, options, lambda _f, _m: None, CancelToken())
    assert longest_run(raw.text)[0] > MAX_REPEATS, raw.text  # the audio provokes it
    result = transcribe_audio(stuck_audio, engine, options, lambda _f, _m: None, CancelToken())
    check(result)
    assert "our team will review the quarterly budget" in result.text.lower()
