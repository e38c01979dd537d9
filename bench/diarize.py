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
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import dialogue
from bench.common import log
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


def run_case(name: str, speakers: int, turns: int, engine: object, encoder: object) -> Row:
    audio, reference = dialogue.conversation(dialogue.scripted_lines(speakers, turns))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conversation.wav"
        dialogue.write_conversation(audio, reference, path, Path(tmp) / "reference.json")
        duration = len(audio) / dialogue.SAMPLE_RATE_HZ
        options = TranscribeOptions(diarization=True)
        started = time.perf_counter()
        transcript = transcribe_audio(path, engine, options, lambda *_: None, CancelToken())  # type: ignore[arg-type]
        transcribed = time.perf_counter() - started
        started = time.perf_counter()
        result = diarize(path, transcript, options, encoder, lambda *_: None, CancelToken())
        diarized = time.perf_counter() - started
    ref = [(turn.speaker, turn.start, turn.end) for turn in reference]
    scores = der(ref, found_turns(result), int(duration / FRAME_S) + 1)
    log(f"{name}: DER {scores[0]:.1%}, {len(result.speakers or ())} speakers")
    return Row(name, duration, turns, speakers, len(result.speakers or ()), *scores,
               diarized / duration, transcribed / duration)  # fmt: skip


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
    rows = [
        run_case("two voices", 2, turns, engine, encoder),
        run_case("three voices", 3, turns, engine, encoder),
    ]
    print(f"Diarization, tiny.en transcripts, DER with a {COLLAR_S} s collar:\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
