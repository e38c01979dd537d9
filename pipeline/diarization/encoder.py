"""The speaker encoder: resemblyzer's VoiceEncoder (a 3-layer LSTM, d-vectors of 256
values; its 17 MB of weights ship inside the Resemblyzer wheel, so nothing is downloaded),
loaded once per process and device, and run over windows of mel frames.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.diarization.audio import resemblyzer_import
from pipeline.errors import PipelineError, StageCancelled
from pipeline.types import CancelToken, ProgressCallback

_BATCH = 32  # windows per forward pass
_lock = threading.Lock()
_encoders: dict[str, Any] = {}
_single_thread_users = 0
_threads_before = 0


def load_encoder(device: str = "cpu") -> Any:
    """The VoiceEncoder on `device` ("cpu" or "cuda"), loaded on the first call in this
    process and shared after (it is read-only: concurrent jobs can use it together).
    Raises PipelineError (code diarization_unavailable) when it cannot be loaded."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    with _lock:
        if device not in _encoders:
            _encoders[device] = _load(device)
        return _encoders[device]


def _load(device: str) -> Any:
    try:
        with resemblyzer_import():
            from resemblyzer import VoiceEncoder

        encoder = VoiceEncoder(device=device, verbose=False)
    except (ImportError, OSError, RuntimeError, AssertionError) as exc:
        # torch without CUDA support raises AssertionError ("not compiled with CUDA")
        raise PipelineError(
            f"the speaker encoder could not be loaded on {device}: {exc}",
            code="diarization_unavailable",
        ) from exc
    return encoder.eval()


def embed_windows(
    mel: np.ndarray,
    windows: Sequence[tuple[int, int]],
    encoder: Any,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> np.ndarray:
    """One L2-normalised embedding per window [start, stop) of mel frames, (n, 256).
    Windows of one length go through the encoder together, _BATCH at a time; cancel is
    polled between batches. Progress goes from 0 to 1 over the windows."""
    with _single_threaded():
        return _embed(mel, windows, encoder, progress, cancel)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """torch on one thread while any embedding runs (the count is global to the process:
    the first to enter sets it, the last to leave puts it back). The encoder is an LSTM
    of small matrix products: on a busy 2-core machine, after Whisper or librosa have used
    their own thread pools, two torch threads took 12-30 ms per window where one takes
    2 ms (bench/diarize.py)."""
    import torch

    global _single_thread_users, _threads_before
    with _lock:
        if _single_thread_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_thread_users += 1
    try:
        yield
    finally:
        with _lock:
            _single_thread_users -= 1
            if _single_thread_users == 0:
                torch.set_num_threads(_threads_before)


def _embed(
    mel: np.ndarray,
    windows: Sequence[tuple[int, int]],
    encoder: Any,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> np.ndarray:
    import torch

    embeddings = np.zeros((len(windows), 256), np.float32)
    by_length: dict[int, list[int]] = {}
    for index, (start, stop) in enumerate(windows):
        by_length.setdefault(stop - start, []).append(index)
    done = 0
    for indices in by_length.values():
        for first in range(0, len(indices), _BATCH):
            if cancel.cancelled:
                raise StageCancelled("Cancelled during diarization")
            batch = indices[first : first + _BATCH]
            frames = np.stack([mel[windows[i][0] : windows[i][1]] for i in batch])
            with torch.inference_mode():
                out = encoder(torch.from_numpy(frames).to(encoder.device))
            embeddings[batch] = out.cpu().numpy()
            done += len(batch)
            progress(done / len(windows), f"diarization: {done}/{len(windows)} windows")
    return embeddings
