"""Speaker diarization: error rate, speakers found and speed, on generated conversations.

`PYTHONPATH=. .venv/bin/python bench/diarize.py [--turns 40] [--smoke] [--write-asset]`.
A script, never a test (`--smoke`: 8 turns per conversation, to check that it runs).
`--write-asset` regenerates tests/assets/dialogue_en.ogg/.json (bench/dialogue.py) and stops.

Conversations of two and of three espeak-ng voices (bench/dialogue.py: a sentence per
turn, nobody twice in a row, pauses of 0.3-0.8 s) are transcribed with faster-whisper
tiny.en (int8, as the service does) and diarized as the Transcriber does. The diarization
error rate is frame-based (10 ms): missed speech + false alarm + speaker confusion over the
reference speech time, with the best one-to-one mapping of found to reference speakers
(scipy's linear_sum_assignment) and the standard 0.25 s collar (frames within 0.25 s of
a reference turn boundary are not scored). Real-time factors are processing seconds per
audio second, diarization alone (the encoder already loaded) and transcription alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import dialogue
from bench.common import log
from pipeline.diarization.audio import SpeechSource
from pipeline.diarization.diarize import diarize
from pipeline.diarization.encoder import load_encoder
from pipeline.options import TranscribeOptions
from pipeline.results import TranscriptResult
from pipeline.transcription.cache import load_engine
from pipeline.transcription.engine import transcribe_audio
from pipeline.types import CancelToken

FRAME_S = 0.01
COLLAR_S = 0.25


@dataclass(frozen=True)
class Row:
    name: str
    duration_s: float
    turns: int
    speakers_true: int
    speakers_found: int
    der: float
    missed: float
    false_alarm: float
    confusion: float
    rtf_diarize: float
    rtf_transcribe: float


def frame_labels(turns: list[tuple[str, float, float]], frames: int) -> list[set[str]]:
    labels: list[set[str]] = [set() for _ in range(frames)]
    for speaker, start, end in turns:
        for frame in range(round(start / FRAME_S), min(round(end / FRAME_S), frames)):
            labels[frame].add(speaker)
    return labels


def der(
    reference: list[tuple[str, float, float]], found: list[tuple[str, float, float]], frames: int
) -> tuple[float, float, float, float]:
    """(DER, missed, false alarm, confusion), each a share of the scored reference speech."""
    from scipy.optimize import linear_sum_assignment

    ref, hyp = frame_labels(reference, frames), frame_labels(found, frames)
    scored = np.ones(frames, bool)
    collar = round(COLLAR_S / FRAME_S)
    for _, start, end in reference:
        for edge in (round(start / FRAME_S), round(end / FRAME_S)):
            scored[max(edge - collar, 0) : edge + collar] = False
    ref_names = sorted({s for s, _, _ in reference})
    hyp_names = sorted({s for s, _, _ in found})
    overlap = np.zeros((len(ref_names), len(hyp_names)))
    for frame in np.flatnonzero(scored):
        for r in ref[frame]:
            for h in hyp[frame]:
                overlap[ref_names.index(r), hyp_names.index(h)] += 1
    rows, cols = linear_sum_assignment(-overlap)
    mapping = {hyp_names[c]: ref_names[r] for r, c in zip(rows, cols, strict=True)}
    total = missed = false_alarm = confusion = 0
    for frame in np.flatnonzero(scored):
        said, heard = ref[frame], {mapping.get(x, "?" + x) for x in hyp[frame]}
        total += len(said)
        missed += max(len(said) - len(heard), 0)
        false_alarm += max(len(heard) - len(said), 0)
        confusion += min(len(said), len(heard)) - len(said & heard)
    total = max(total, 1)
    return (
        (missed + false_alarm + confusion) / total,
        missed / total,
        false_alarm / total,
        (confusion / total),
    )


def found_turns(result: TranscriptResult) -> list[tuple[str, float, float]]:
    """The diarized speech: each segment's words, as (speaker, start, end) runs."""
    turns: list[tuple[str, float, float]] = []
    for segment in result.segments:
        for word in segment.words:
            speaker = word.speaker or "?"
            if turns and turns[-1][0] == speaker and word.start_s - turns[-1][2] < 0.5:
                turns[-1] = (speaker, turns[-1][1], word.end_s)
            else:
                turns.append((speaker, word.start_s, word.end_s))
    return turns


@dataclass(frozen=True)
class Case:
    name: str
    voices: str  # bench/dialogue.py voice names, e.g. "AB"
    background: str | None = None  # "noise" or "music" under the speech
    level_db: float = 0.0  # the background's level below the speech


CASES = (
    Case("one voice (A)", "A"),
    Case("one voice (B)", "B"),
    Case("two voices", "AB"),
    Case("three voices", "ABC"),
    Case("two voices, noise 15 dB below", "AB", "noise", 15.0),
    Case("two voices, music 15 dB below", "AB", "music", 15.0),
)
SOURCES: tuple[SpeechSource, ...] = ("vad+words", "vad", "words")


def run_case(case: Case, turns: int, engine: Any, encoder: Any) -> dict[str, Row]:
    """The case's conversation transcribed once, then diarized once per speech source."""
    audio, reference = dialogue.conversation(dialogue.scripted_lines(case.voices, turns))
    if case.background is not None:
        audio = dialogue.with_background(audio, case.background, case.level_db)
    duration = len(audio) / dialogue.SAMPLE_RATE_HZ
    ref = [(turn.speaker, turn.start, turn.end) for turn in reference]
    rows: dict[str, Row] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conversation.wav"
        dialogue.write_conversation(audio, reference, path, Path(tmp) / "reference.json")
        options = TranscribeOptions(diarization=True)
        started = time.perf_counter()
        transcript = transcribe_audio(path, engine, options, quiet, CancelToken())
        transcribed = time.perf_counter() - started
        for source in SOURCES:
            started = time.perf_counter()
            result = diarize(path, transcript, options, encoder, quiet, CancelToken(), source)
            diarized = time.perf_counter() - started
            scores = der(ref, found_turns(result), int(duration / FRAME_S) + 1)
            found = len(result.speakers or ())
            rows[source] = Row(case.name, duration, turns, len(case.voices), found, *scores,
                               diarized / duration, transcribed / duration)  # fmt: skip
            log(f"{case.name}, {source}: DER {scores[0]:.1%}, {found} speakers")
    return rows


def quiet(fraction: float, message: str) -> None:
    pass


def table(rows: list[Row]) -> str:
    lines = [
        "| conversation | audio s | turns | speakers (true / found) | DER | missed | "
        "false alarm | confusion | RTF diarization | RTF transcription |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.duration_s:.0f} | {r.turns} | {r.speakers_true} / "
            f"{r.speakers_found} | {r.der:.1%} | {r.missed:.1%} | {r.false_alarm:.1%} | "
            f"{r.confusion:.1%} | {r.rtf_diarize:.3f} | {r.rtf_transcribe:.3f} |"
        )
    return "\n".join(lines)


def sources_table(results: list[dict[str, Row]]) -> str:
    lines = [
        "| conversation | " + " | ".join(f"{s}: DER, speakers" for s in SOURCES) + " |",
        "| --- |" + " --- |" * len(SOURCES),
    ]
    for rows in results:
        cells = [f"{rows[s].der:.1%}, {rows[s].speakers_found}" for s in SOURCES]
        lines.append(f"| {rows[SOURCES[0]].name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def warm_up(engine: Any, encoder: Any) -> None:
    """One short diarization first: librosa's and the encoder's first calls cost seconds
    that a running Transcriber replica pays once."""
    run_case(Case("warm-up", "AB"), 2, engine, encoder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=40, help="turns per conversation")
    parser.add_argument("--smoke", action="store_true", help="8 turns: only checks it runs")
    parser.add_argument("--write-asset", action="store_true", help="regenerate the test asset")
    args = parser.parse_args(argv)
    if args.write_asset:
        written = dialogue.write_asset()
        print(f"wrote {dialogue.DIALOGUE_AUDIO} ({written[-1].end:.1f} s, {len(written)} turns)")
        return 0
    turns = 8 if args.smoke else args.turns
    engine = load_engine("faster-whisper", "tiny.en", "cpu")
    encoder = load_encoder("cpu")
    warm_up(engine, encoder)
    results = [run_case(case, turns, engine, encoder) for case in CASES]
    print(f"Diarization of tiny.en transcripts (speech: VAD near the words), DER with a "
          f"{COLLAR_S} s collar, {os.cpu_count()} CPU cores:\n")  # fmt: skip
    print(table([rows[SOURCES[0]] for rows in results]))
    print("\nSpeech regions taken from the VAD near the words, the VAD alone, the words alone:\n")
    print(sources_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
