"""Conversations between espeak-ng voices, with the reference of who spoke when.

Shared by the diarization benchmark (bench/diarize.py) and the committed test asset
tests/assets/dialogue_en.ogg + dialogue_en.json (two voices, six turns, 26 s), which
`python bench/diarize.py --write-asset` regenerates where espeak-ng is installed (Debian:
`apt-get install espeak-ng`). The voices differ the way two people do: a low-pitched
American male, a high-pitched British female variant, and (for three) a lower-pitched
American female variant (a second male voice of the same synthesizer sounds too much like
the first for the encoder: centroid cosine similarity 0.9, against 0.75 for this one).
Turns are joined by short pauses of varying length; the reference turn of each sentence
runs from its first to its last sample above a small amplitude, so espeak-ng's own leading
and trailing silence is not counted as speech.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE_HZ = 16000
ASSETS_DIR = Path(__file__).resolve().parents[1] / "tests" / "assets"
DIALOGUE_AUDIO = ASSETS_DIR / "dialogue_en.ogg"
DIALOGUE_REFERENCE = ASSETS_DIR / "dialogue_en.json"


@dataclass(frozen=True)
class Voice:
    name: str  # the speaker's reference label
    espeak_voice: str  # espeak-ng -v
    pitch: int  # espeak-ng -p, 0..99
    words_per_minute: int  # espeak-ng -s


VOICES = (
    Voice("A", "en-us", 25, 155),
    Voice("B", "en-gb-x-rp+f3", 75, 165),
    Voice("C", "en-us+f2", 45, 150),
)


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


# The committed asset: six turns, two voices
ASSET_LINES = (
    ("A", "Good morning. Did you get a chance to look at the budget for the new library?"),
    ("B", "I did. The numbers look fine, but the opening date seems far too early."),
    ("A", "We could move it to the spring. The builders need at least three more months."),
    ("B", "Spring works for me. Shall I tell the council on Monday?"),
    ("A", "Yes please, and ask them about the parking near the river."),
    ("B", "I will send them an email this afternoon."),
)

# Sentences for longer conversations (the benchmark cycles through them)
SENTENCES = (
    "Good morning, thanks for joining the call so early today.",
    "No problem at all, I wanted to go over the schedule anyway.",
    "The first draft of the report is ready for review.",
    "Great, I will read it tonight and send my comments tomorrow.",
    "We still need numbers from the sales team before Friday.",
    "I spoke with them yesterday and they promised a summary soon.",
    "What about the budget for the second quarter?",
    "It is tight, but we can cover the travel costs if we plan ahead.",
    "Should we invite the new designer to the next meeting?",
    "Yes, she has good ideas about the website and the brochure.",
    "The weather forecast says it will rain all week.",
    "Then we should move the team lunch indoors.",
    "Did anyone book a room for the workshop in March?",
    "I did, the large one on the third floor is free that day.",
    "Please remember to update the shared calendar.",
    "I will do it right after this call.",
    "The printer on our floor is broken again.",
    "I reported it this morning, a technician comes at noon.",
    "Let us meet again on Thursday to check the progress.",
    "Thursday afternoon suits me, around three o'clock.",
)


def speak(text: str, voice: Voice) -> np.ndarray:
    """`text` spoken by `voice`: float32 samples at 16 kHz, trimmed to its sound."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    command = [espeak, "-v", voice.espeak_voice, "-p", str(voice.pitch)]
    command += ["-s", str(voice.words_per_minute), "--stdout", text]
    wav = subprocess.run(command, check=True, capture_output=True, timeout=120).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    samples = soxr.resample(samples, rate, SAMPLE_RATE_HZ)
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def conversation(
    lines: tuple[tuple[str, str], ...], seed: int = 7
) -> tuple[np.ndarray, list[Turn]]:
    """The samples of `lines` (speaker name, text) spoken one after another with pauses of
    0.3 to 0.8 s (0.5 s of silence before the first), and the reference turns."""
    voices = {voice.name: voice for voice in VOICES}
    rng = np.random.default_rng(seed)
    parts = [np.zeros(SAMPLE_RATE_HZ // 2, dtype=np.float32)]
    position = parts[0].size
    turns: list[Turn] = []
    for speaker, text in lines:
        samples = speak(text, voices[speaker])
        start = position / SAMPLE_RATE_HZ
        position += samples.size
        turns.append(Turn(speaker, round(start, 3), round(position / SAMPLE_RATE_HZ, 3), text))
        pause = np.zeros(int(rng.uniform(0.3, 0.8) * SAMPLE_RATE_HZ), dtype=np.float32)
        parts += [samples, pause]
        position += pause.size
    audio = np.concatenate(parts)
    return (0.8 * audio / max(float(np.abs(audio).max()), 1e-6)).astype(np.float32), turns


def with_background(audio: np.ndarray, kind: str, level_db: float, seed: int = 11) -> np.ndarray:
    """`audio` with a bed under it, `level_db` below the speech's RMS: "noise" (pink-ish:
    white noise through a one-pole low-pass) or "music" (a chord a second, C Am F G)."""
    rng = np.random.default_rng(seed)
    t = np.arange(audio.size) / SAMPLE_RATE_HZ
    if kind == "noise":
        from scipy.signal import lfilter

        bed = lfilter([1.0], [1.0, -0.97], rng.standard_normal(audio.size))
    else:
        chords = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6),
                  (196.0, 246.9, 293.7))  # fmt: skip
        index = t.astype(int) % 4
        bed = sum(np.sin(2 * np.pi * np.array([c[v] for c in chords])[index] * t) for v in range(3))
    speech = audio[np.abs(audio) > 0.01]
    gain = np.sqrt(np.mean(speech**2)) / np.sqrt(np.mean(bed**2)) * 10 ** (-level_db / 20)
    mixed = audio + gain * bed
    return (0.8 * mixed / np.abs(mixed).max()).astype(np.float32)


def scripted_lines(voices: str, turns: int, seed: int = 3) -> tuple[tuple[str, str], ...]:
    """`turns` lines among `voices` (names, e.g. "AB"): nobody speaks twice in a row
    (unless alone), the next speaker drawn at random among the others."""
    rng = np.random.default_rng(seed)
    lines: list[tuple[str, str]] = []
    current = voices[0]
    for index in range(turns):
        lines.append((current, SENTENCES[index % len(SENTENCES)]))
        others = [name for name in voices if name != current] or [current]
        current = str(rng.choice(others))
    return tuple(lines)


def write_conversation(
    audio: np.ndarray, turns: list[Turn], audio_path: Path, reference_path: Path
) -> None:
    """Write the samples (Opus in Ogg for .ogg, else by suffix) and the turns as JSON."""
    subtype = "OPUS" if audio_path.suffix == ".ogg" else None
    sf.write(audio_path, audio, SAMPLE_RATE_HZ, subtype=subtype)
    reference = {"sample_rate": SAMPLE_RATE_HZ, "turns": [asdict(turn) for turn in turns]}
    reference_path.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")


def load_reference(path: Path = DIALOGUE_REFERENCE) -> list[Turn]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Turn(**turn) for turn in data["turns"]]


def write_asset() -> list[Turn]:
    """Regenerate tests/assets/dialogue_en.ogg and dialogue_en.json."""
    audio, turns = conversation(ASSET_LINES)
    write_conversation(audio, turns, DIALOGUE_AUDIO, DIALOGUE_REFERENCE)
    return turns
