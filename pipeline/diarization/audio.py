"""The audio as the speaker encoder sees it: 10 ms mel frames and which of them are speech.

The file is decoded window by window (`pipeline.media.audio_windows`, as the transcription
reads it), so only the mel spectrogram of the whole audio stays in memory (40 floats per
10 ms: 115 MB for two hours), never its samples. Speech is what WebRTC's VAD hears, kept
only near the transcript's words when there are words (`speech_frames`). bench/diarize.py
compares the sources: the words alone chop speech at every gap between words, so windows
get short and one voice splits in two; the VAD alone does as well as the default on its
conversations (with noise or music under them too); keeping only its speech near words
guards against long non-speech stretches it fires on.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.errors import StageCancelled
from pipeline.media.audio_windows import SAMPLE_RATE_HZ, iter_audio_windows
from pipeline.results import Word
from pipeline.types import CancelToken

FRAME_S = 0.01  # one mel frame (resemblyzer's hop)
_FRAME_SAMPLES = int(SAMPLE_RATE_HZ * FRAME_S)
_VAD_FRAME_MS = 30  # webrtcvad takes 10, 20 or 30 ms frames
_VAD_MODE = 2  # 0 (least) .. 3 (most aggressive at calling audio non-speech)
_DECODE_WINDOW_S = 60.0
_TARGET_DBFS = -30
# A word's speech may start this much before its timestamp and end this much after it
WORD_MARGIN_S = 0.25


@dataclass(frozen=True)
class AudioFeatures:
    mel: np.ndarray  # (frames, 40) float32, one row per 10 ms
    speech: np.ndarray  # (frames,) bool: the frame is speech

    @property
    def duration_s(self) -> float:
        return len(self.mel) * FRAME_S


@contextlib.contextmanager
def resemblyzer_import() -> Iterator[None]:
    """Around an import of resemblyzer: without its one known warning (resemblyzer.audio
    imports binary_dilation from scipy.ndimage.morphology, deprecated since SciPy 1.8)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Please import `binary_dilation` from the `scipy.ndimage` namespace",
            category=DeprecationWarning,
        )
        yield


def resemblyzer_audio() -> Any:
    """resemblyzer.audio (its mel spectrogram)."""
    with resemblyzer_import():
        from resemblyzer import audio

    return audio


def read_features(path: Path, cancel: CancelToken) -> AudioFeatures:
    """The mel frames and the VAD's speech frames of the audio file. Raises MediaError
    (missing, unreadable, no audio track) or StageCancelled."""
    import webrtcvad

    audio = resemblyzer_audio()
    vad = webrtcvad.Vad(_VAD_MODE)
    mels: list[np.ndarray] = []
    speech: list[np.ndarray] = []
    for window in iter_audio_windows(path, _DECODE_WINDOW_S):
        if cancel.cancelled:
            raise StageCancelled("Cancelled while reading the audio for diarization")
        frames = len(window.samples) // _FRAME_SAMPLES
        if frames == 0:
            continue
        samples = window.samples[: frames * _FRAME_SAMPLES]
        # the encoder was trained on audio at -30 dBFS (quieter audio is raised to it)
        mel = audio.wav_to_mel_spectrogram(_raised(samples))[:frames]
        mels.append(np.pad(mel, ((0, frames - len(mel)), (0, 0)), mode="edge"))
        speech.append(_vad_frames(vad, samples, frames))
    if not mels:
        return AudioFeatures(np.zeros((0, 40), np.float32), np.zeros(0, bool))
    return AudioFeatures(np.concatenate(mels).astype(np.float32), np.concatenate(speech))


def _raised(samples: np.ndarray) -> np.ndarray:
    """The samples raised to _TARGET_DBFS when quieter (the level the encoder was trained
    at; its mel spectrogram is not logarithmic, so the level matters)."""
    rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    if rms <= 1e-6:
        return samples
    gain = 10 ** ((_TARGET_DBFS - 20 * np.log10(rms)) / 20)
    return samples * gain if gain > 1 else samples


def _vad_frames(vad: Any, samples: np.ndarray, frames: int) -> np.ndarray:
    """Per 10 ms frame: does WebRTC's VAD call its 30 ms frame speech."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    step = _VAD_FRAME_MS // 10
    speech = np.zeros(frames, bool)
    for first in range(0, frames - step + 1, step):
        chunk = pcm[first * _FRAME_SAMPLES : (first + step) * _FRAME_SAMPLES]
        speech[first : first + step] = vad.is_speech(chunk.tobytes(), SAMPLE_RATE_HZ)
    return speech


SpeechSource = Literal["vad+words", "vad", "words"]


def speech_frames(
    vad: np.ndarray, words: Sequence[Word], source: SpeechSource = "vad+words"
) -> np.ndarray:
    """The frames to diarize. "vad+words" (the default): the VAD's speech within
    WORD_MARGIN_S of a word, plus the words' own frames (the VAD alone when there are no
    words); "vad": the VAD's speech; "words": the words' frames. bench/diarize.py compares
    the three."""
    if source == "vad" or (source == "vad+words" and not words):
        return vad
    near = np.zeros_like(vad)
    inside = np.zeros_like(vad)
    margin = int(WORD_MARGIN_S / FRAME_S)
    for word in words:
        first, last = (
            max(int(word.start_s / FRAME_S), 0),
            max(int(np.ceil(word.end_s / FRAME_S)), 0),
        )
        inside[first:last] = True
        near[max(first - margin, 0) : last + margin] = True
    return inside if source == "words" else (vad & near) | inside


def speech_regions(speech: np.ndarray, min_gap_frames: int) -> list[tuple[int, int]]:
    """Runs of speech frames [start, stop), joined across gaps shorter than min_gap_frames."""
    padded = np.concatenate(([False], speech, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
    regions: list[tuple[int, int]] = []
    for start, stop in runs:
        if regions and start - regions[-1][1] < min_gap_frames:
            regions[-1] = (regions[-1][0], stop)
        else:
            regions.append((start, stop))
    return regions
