"""Long audio read as 16 kHz mono windows of a bounded length, each cut at a quiet point.

The Whisper engines transcribe window after window, so memory stays bounded on a two-hour
input (faster-whisper would otherwise decode the whole file and its spectrogram into
memory), and a window never ends in the middle of a word: it is cut at the quietest
moment near its end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import MediaError
from pipeline.media.probe import probe

SAMPLE_RATE_HZ = 16000
CUT_SEARCH_S = 10.0
_FRAME_S = 0.01
_DECODE_GROUP_SAMPLES = 200_000  # about 4 s at 48 kHz
_QUIET_SPAN_S = 0.2


@dataclass(frozen=True)
class AudioWindow:
    offset_s: float
    samples: np.ndarray  # float32 mono at SAMPLE_RATE_HZ

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def _decode_chunks(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FileNotFoundError, FileNotFoundError):
        raise MediaError(
            f"The audio file {path.name} does not exist", code="file_missing"
        ) from None
    except av.error.FFmpegError as exc:
        raise MediaError(
            f"{path.name} is not a readable audio file: {exc}", code="not_media"
        ) from exc
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_HZ)
    # resampling frame by frame costs 5x more than in groups of a few seconds
    fifo = av.audio.fifo.AudioFifo()

    try:
        if not container.streams.audio:
            raise MediaError(f"{path.name} has no audio track", code="no_audio")
        frames = container.decode(audio=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it, as faster-whisper does
            frame.pts = None
            fifo.write(frame)
            if fifo.samples >= _DECODE_GROUP_SAMPLES:
                yield from _resampled(resampler, fifo.read())
        if fifo.samples:
            yield from _resampled(resampler, fifo.read())
        yield from _resampled(resampler, None)
    finally:
        container.close()
        del resampler
        gc.collect()  # PyAV's resampler otherwise leaks (faster-whisper issue 390)


def _resampled(resampler: Any, frame: Any) -> Iterator[np.ndarray]:
    for out in resampler.resample(frame):
        yield out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0


def quietest_sample(samples: np.ndarray, start: int, stop: int) -> int:
    """Index of the middle of the quietest 200 ms in samples[start:stop]."""
    hop = int(SAMPLE_RATE_HZ * _FRAME_S)
    region = samples[start:stop]
    frames = len(region) // hop
    if frames < 1:
        return stop
    energy = np.square(region[: frames * hop].reshape(frames, hop)).mean(axis=1)
    span = max(1, min(frames, int(_QUIET_SPAN_S / _FRAME_S)))
    smooth = np.convolve(energy, np.ones(span) / span, mode="same")
    return start + int(np.argmin(smooth)) * hop + hop // 2


def iter_audio_windows(
    path: Path, window_s: float, search_s: float = CUT_SEARCH_S
) -> Iterator[AudioWindow]:
    """The audio as 16 kHz mono windows of at most `window_s`, each cut at its quietest
    point within the last `search_s`. Only about one window is in memory at a time."""
    window = int(window_s * SAMPLE_RATE_HZ)
    search = min(int(search_s * SAMPLE_RATE_HZ), window // 2)
    pending: list[np.ndarray] = []
    pending_samples = 0
    offset = 0
    for chunk in _decode_chunks(path):
        pending.append(chunk)
        pending_samples += len(chunk)
        while pending_samples >= window:
            audio = np.concatenate(pending)
            cut = quietest_sample(audio, window - search, window)
            yield AudioWindow(offset / SAMPLE_RATE_HZ, audio[:cut])
            offset += cut
            rest = audio[cut:].copy()
            pending, pending_samples = [rest], len(rest)
    if pending_samples:
        yield AudioWindow(offset / SAMPLE_RATE_HZ, np.concatenate(pending))


def audio_duration_s(path: Path) -> float | None:
    """The container's duration, for progress before the audio is decoded."""
    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{path.name} has no audio track", code="no_audio")
    return info.duration_s
