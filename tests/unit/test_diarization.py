"""Speaker diarization (pipeline/diarization) with the real encoder on committed speech.

tests/assets/dialogue_en.ogg is two espeak-ng voices taking six turns (26 s);
dialogue_en.json holds who spoke when (bench/dialogue.py made both: `python
bench/diarize.py --write-asset`). Each asset is transcribed once per module with tiny.en.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.diarization.clustering import cluster_embeddings
from pipeline.diarization.diarize import apply_turns, diarize
from pipeline.diarization.encoder import load_encoder
from pipeline.diarization.turns import Turn
from pipeline.errors import MediaError, PipelineError, StageCancelled
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.cache import load_engine
from pipeline.transcription.engine import transcribe_audio
from pipeline.types import CancelToken
from tests.fixtures.speech import ASSETS_DIR, SPEECH_AUDIO

DIALOGUE = ASSETS_DIR / "dialogue_en.ogg"
REFERENCE = json.loads((ASSETS_DIR / "dialogue_en.json").read_text(encoding="utf-8"))["turns"]


def ignore(fraction: float, message: str) -> None:
    pass


@dataclass
class Transcripts:
    dialogue: TranscriptResult
    single: TranscriptResult


@pytest.fixture(scope="module")
def encoder() -> Any:
    return load_encoder("cpu")


@pytest.fixture(scope="module")
def transcripts() -> Transcripts:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = load_engine("faster-whisper", "tiny.en", "cpu")
    options = TranscribeOptions()
    return Transcripts(
        transcribe_audio(DIALOGUE, engine, options, ignore, CancelToken()),
        transcribe_audio(SPEECH_AUDIO, engine, options, ignore, CancelToken()),
    )


def run(
    audio: Path, transcript: TranscriptResult, encoder: Any, **options: Any
) -> TranscriptResult:
    return diarize(
        audio, transcript, TranscribeOptions(diarization=True, **options), encoder, ignore,
        CancelToken(),
    )  # fmt: skip


def words_of(result: TranscriptResult) -> list[Word]:
    return [word for segment in result.segments for word in segment.words]


def test_dialogue_turns_match_the_reference(transcripts: Transcripts, encoder: Any) -> None:
    progress: list[tuple[float, str]] = []
    result = diarize(
        DIALOGUE, transcripts.dialogue, TranscribeOptions(diarization=True), encoder,
        lambda fraction, message: progress.append((fraction, message)), CancelToken(),
    )  # fmt: skip
    words = words_of(result)
    assert len(words) == len(words_of(transcripts.dialogue))
    assert [s.speaker for s in result.speakers or ()] == ["Speaker 1", "Speaker 2"]
    assert words[0].speaker == "Speaker 1"
    # each reference turn's words mostly carry one speaker, and it changes at every turn
    majorities: list[str] = []
    for turn in REFERENCE:
        inside = [w for w in words if turn["start"] <= (w.start_s + w.end_s) / 2 <= turn["end"]]
        assert len(inside) >= 3, turn
        label, count = Counter(w.speaker for w in inside).most_common(1)[0]
        assert count >= 0.9 * len(inside), (turn, [(w.word, w.speaker) for w in inside])
        majorities.append(str(label))
    assert all(a != b for a, b in itertools.pairwise(majorities)), majorities
    # segments: one speaker each, ids in order, text from the words
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    for segment in result.segments:
        assert {w.speaker for w in segment.words} == {segment.speaker}
        assert segment.text == "".join(w.word for w in segment.words).strip()
    # the summary counts what the words say
    speakers = {s.speaker: s for s in result.speakers or ()}
    counts = Counter(w.speaker for w in words)
    assert {name: s.words for name, s in speakers.items()} == dict(counts)
    assert all(s.turns == 3 for s in speakers.values()), speakers
    for name, speaker in speakers.items():
        reference_talk = sum(
            t["end"] - t["start"] for t, m in zip(REFERENCE, majorities, strict=True) if m == name
        )
        assert speaker.talk_time_s == pytest.approx(reference_talk, rel=0.15)
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(message.startswith("diarization") for _, message in progress)


def test_num_speakers_one_gives_one_speaker(transcripts: Transcripts, encoder: Any) -> None:
    result = run(DIALOGUE, transcripts.dialogue, encoder, num_speakers=1)
    assert [s.speaker for s in result.speakers or ()] == ["Speaker 1"]
    assert {w.speaker for w in words_of(result)} == {"Speaker 1"}
    assert len(result.segments) == len(transcripts.dialogue.segments)  # nothing to split


def test_max_speakers_bounds_the_count(transcripts: Transcripts, encoder: Any) -> None:
    result = run(DIALOGUE, transcripts.dialogue, encoder, min_speakers=1, max_speakers=1)
    assert len(result.speakers or ()) == 1


def test_a_single_voice_is_one_speaker(transcripts: Transcripts, encoder: Any) -> None:
    result = run(SPEECH_AUDIO, transcripts.single, encoder)
    assert result.speakers is not None and len(result.speakers) == 1
    assert result.speakers[0].words == len(words_of(transcripts.single))
    assert result.speakers[0].turns == 1


def test_count_estimate_stays_within_bounds() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(256)[:3] + 0.2
    embeddings = np.concatenate([c + 0.02 * rng.standard_normal((10, 256)) for c in centres])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    assert len(set(cluster_embeddings(embeddings, 1, 8))) == 3  # estimated
    assert len(set(cluster_embeddings(embeddings, 1, 2))) == 2  # capped
    assert len(set(cluster_embeddings(embeddings, 4, 8))) == 4  # raised
    assert len(set(cluster_embeddings(embeddings, 5, 5))) == 5  # fixed
    assert len(set(cluster_embeddings(embeddings[:2], 3, 3))) == 2  # no more than windows
    same = embeddings[:10]
    assert len(set(cluster_embeddings(same, 1, 8))) == 1  # one voice
    # one odd window is no speaker (a lone cluster would score a high silhouette)
    odd = np.concatenate([same, embeddings[20:21]])
    assert len(set(cluster_embeddings(odd, 1, 8))) == 1
    assert len(set(cluster_embeddings(odd, 2, 8))) == 2  # unless asked for


def test_many_windows_are_clustered_from_a_sample() -> None:
    rng = np.random.default_rng(1)
    truth = np.arange(2 * 900) % 2  # more windows than MAX_CLUSTERED, alternating voices
    centres = np.eye(256)[:2] + 0.2
    embeddings = centres[truth] + 0.02 * rng.standard_normal((len(truth), 256))
    labels = cluster_embeddings(embeddings, 1, 8)
    assert len(labels) == len(truth) and len(set(labels)) == 2
    assert (labels == labels[0]).tolist() == (truth == truth[0]).tolist()


def word(start: float, end: float, text: str) -> Word:
    return Word(start, end, text, 0.9)


def test_segments_split_at_speaker_changes_and_the_summary_adds_up() -> None:
    first = Segment(
        0, 0.0, 4.2, "Hello there. Hi you.", -0.3, 0.1, 1.2,
        (word(0.1, 0.5, " Hello"), word(1.2, 1.6, " there."), word(2.2, 2.6, " Hi"),
         word(2.7, 4.0, " you.")),
    )  # fmt: skip
    wordless = Segment(1, 5.0, 6.0, "Yes.", -0.5, 0.2, 1.0)
    last = Segment(2, 7.0, 8.0, "Fine.", -0.4, 0.3, 1.1, (word(7.1, 7.9, " Fine."),))
    result = TranscriptResult("...", (first, wordless, last), "en", 1.0, 9.0)
    # label 7 speaks first, so it is Speaker 1; label 3 (never on a word) is no speaker
    turns = [
        Turn(0.0, 1.1, 7), Turn(2.0, 4.1, 2), Turn(4.9, 5.7, 2), Turn(5.7, 6.1, 7),
        Turn(6.9, 8.0, 7), Turn(8.2, 8.5, 3),
    ]  # fmt: skip
    out = apply_turns(result, turns)
    assert [(s.id, s.speaker, s.text) for s in out.segments] == [
        (0, "Speaker 1", "Hello there."),
        (1, "Speaker 2", "Hi you."),
        (2, "Speaker 2", "Yes."),  # no words: the speaker overlapping it most
        (3, "Speaker 1", "Fine."),
    ]
    head, tail = out.segments[0], out.segments[1]
    # " there." (1.2-1.6) falls between turns: the nearest (ending at 1.1) is Speaker 1's
    assert (head.start_s, head.end_s, tail.start_s, tail.end_s) == (0.0, 1.6, 2.2, 4.2)
    for piece in (head, tail):
        assert (piece.avg_logprob, piece.no_speech_prob, piece.compression_ratio) == (
            -0.3, 0.1, 1.2,
        )  # fmt: skip
    assert [w.speaker for w in out.segments[0].words] == ["Speaker 1", "Speaker 1"]
    speakers = {s.speaker: s for s in out.speakers or ()}
    assert list(speakers) == ["Speaker 1", "Speaker 2"]
    assert speakers["Speaker 1"].talk_time_s == pytest.approx(1.1 + 0.4 + 1.1)
    assert speakers["Speaker 2"].talk_time_s == pytest.approx(2.1 + 0.8)
    # 7 | 2 2 | 7 7: Speaker 1 takes two turns, Speaker 2 one
    assert (speakers["Speaker 1"].turns, speakers["Speaker 2"].turns) == (2, 1)
    assert (speakers["Speaker 1"].words, speakers["Speaker 2"].words) == (3, 2)
    assert out.text == result.text and out.duration_s == result.duration_s


def test_an_empty_transcript_has_no_speakers(encoder: Any, tmp_path: Path) -> None:
    empty = TranscriptResult("", (), "en", 1.0, 3.0)
    result = run(tmp_path / "never-read.wav", empty, encoder)
    assert result.speakers == () and result.segments == ()


def test_cancel_stops_diarization(transcripts: Transcripts, encoder: Any) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        diarize(DIALOGUE, transcripts.dialogue, TranscribeOptions(), encoder, ignore, cancel)

    during = CancelToken()
    seen: list[str] = []

    def cancel_when_embedding(fraction: float, message: str) -> None:
        seen.append(message)
        if "embedding" in message:
            during.cancel()

    with pytest.raises(StageCancelled):
        diarize(DIALOGUE, transcripts.dialogue, TranscribeOptions(), encoder,
                cancel_when_embedding, during)  # fmt: skip
    assert not any("windows" in message and "/" in message for message in seen)


def test_unreadable_audio_is_a_media_error(
    transcripts: Transcripts, encoder: Any, tmp_path: Path
) -> None:
    garbage = tmp_path / "audio.wav"
    garbage.write_text("not audio at all\n" * 100)
    with pytest.raises(MediaError) as raised:
        run(garbage, transcripts.dialogue, encoder)
    assert raised.value.code == "not_media"
    with pytest.raises(MediaError) as missing:
        run(tmp_path / "missing.wav", transcripts.dialogue, encoder)
    assert missing.value.code == "file_missing"


def test_the_encoder_loads_once_per_process(encoder: Any) -> None:
    assert load_encoder("cpu") is encoder
    with pytest.raises(ValueError):
        load_encoder("tpu")


def test_an_encoder_without_its_device_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():  # a GPU machine: the encoder runs there
        assert str(load_encoder("cuda").device).startswith("cuda")
        return
    with pytest.raises(PipelineError) as raised:
        load_encoder("cuda")
    assert raised.value.code == "diarization_unavailable"
    assert "cuda" in raised.value.message
