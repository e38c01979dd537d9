"""Loading Whisper engines by name, and an LRU of the loaded ones (one per process)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from pipeline.errors import TranscriptionError
from pipeline.transcription import whisper_engines
from pipeline.transcription.engine import ENGINE_NAMES, Device, TranscriptionEngine

EngineLoader = Callable[[str, str, Device, "str | None"], TranscriptionEngine]


def load_engine(
    engine: str,
    model: str,
    device: Device = "cpu",
    compute_type: str | None = None,
    num_workers: int = 1,
) -> TranscriptionEngine:
    """Load `model` with the named engine. `num_workers` lets that many transcriptions share
    one loaded faster-whisper model at once. Raises TranscriptionError (engine_unavailable,
    model_unavailable, device_unavailable)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    if engine == "faster-whisper":
        return whisper_engines.FasterWhisperEngine(
            model, device=device, compute_type=compute_type, num_workers=num_workers
        )
    if engine == "openai-whisper":
        return whisper_engines.OpenAIWhisperEngine(model, device=device)
    raise TranscriptionError(
        f"Unknown transcription engine {engine!r}; use one of {', '.join(ENGINE_NAMES)}",
        code="engine_unavailable",
    )


class ModelCache:
    """The last `max_models` loaded engines, keyed by (engine, model, device, compute_type).

    Each model loads once even when many threads ask for it at the same time; a failed load
    is not remembered, so a later call tries again. An evicted engine stays usable by the
    jobs that still hold it and is freed when they finish.
    """

    def __init__(self, max_models: int = 2, loader: EngineLoader = load_engine) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._loader = loader
        self._engines: OrderedDict[tuple[str, str, str, str | None], TranscriptionEngine] = (
            OrderedDict()
        )
        self._loading: dict[tuple[str, str, str, str | None], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(
        self,
        engine: str,
        model: str,
        device: Device = "cpu",
        compute_type: str | None = None,
    ) -> TranscriptionEngine:
        key = (engine, model, device, compute_type)
        with self._lock:
            if key in self._engines:
                self._engines.move_to_end(key)
                return self._engines[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; other keys load in parallel
            with self._lock:
                if key in self._engines:
                    self._engines.move_to_end(key)
                    return self._engines[key]
            try:
                loaded = self._loader(engine, model, device, compute_type)
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._loading.pop(key, None)
                self._engines[key] = loaded
                while len(self._engines) > self.max_models:
                    self._engines.popitem(last=False)
            return loaded

    def loaded(self) -> list[tuple[str, str, str, str | None]]:
        """Keys of the loaded engines, least recently used first."""
        with self._lock:
            return list(self._engines)

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()
