"""Stage 3: speech to text with Whisper. Results, options, the engine protocol, a model cache.

The engines themselves (faster-whisper, openai-whisper) live in `pipeline.whisper_engines`;
this module holds what every caller needs: the frozen result dataclasses with their JSON
shape, `TranscribeOptions`, the `TranscriptionEngine` protocol, the guard that drops
hallucinated segments, an LRU of loaded models and the `transcribe_audio` entry point.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.errors import PipelineError, StageCancelled
from pipeline.types import CancelToken, ProgressCallback

Device = Literal["cpu", "cuda"]
EngineName = Literal["faster-whisper", "openai-whisper"]
ENGINE_NAMES: tuple[EngineName, ...] = ("faster-whisper", "openai-whisper")

# A segment whose words average below this probability, in a window the model calls silent,
# is invented text (Whisper's classic "you" on silence).
MIN_MEAN_WORD_PROBABILITY = 0.5


class TranscriptionError(PipelineError):
    """Speech recognition failed: the model or engine is missing, or decoding broke."""

    code = "transcription_failed"


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    word: str  # as Whisper emits it: usually with its leading space
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "word": self.word,
            "probability": round(self.probability, 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Word:
        return cls(
            start_s=float(data["start"]),
            end_s=float(data["end"]),
            word=str(data["word"]),
            probability=float(data["probability"]),
        )


@dataclass(frozen=True)
class Segment:
    id: int
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "text": self.text,
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
            "compression_ratio": round(self.compression_ratio, 4),
            "words": [word.to_dict() for word in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(
            id=int(data["id"]),
            start_s=float(data["start"]),
            end_s=float(data["end"]),
            text=str(data["text"]),
            avg_logprob=float(data["avg_logprob"]),
            no_speech_prob=float(data["no_speech_prob"]),
            compression_ratio=float(data.get("compression_ratio", 0.0)),
            words=tuple(Word.from_dict(word) for word in data.get("words") or ()),
        )


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "duration": round(self.duration_s, 3),
            "segments": [segment.to_dict() for segment in self.segments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptResult:
        """Rebuild a result from `to_dict()` output (a checkpointed stage result)."""
        return cls(
            text=str(data["text"]),
            segments=tuple(Segment.from_dict(segment) for segment in data["segments"]),
            language=str(data["language"]),
            language_probability=float(data["language_probability"]),
            duration_s=float(data["duration"]),
        )


@dataclass(frozen=True)
class TranscribeOptions:
    """Per-job decoding options. Thresholds follow Whisper's own names and defaults."""

    language: str | None = None  # None: detect it from the first 30 s
    word_timestamps: bool = True
    vad_filter: bool = True  # Silero VAD: only speech reaches the decoder (faster-whisper)
    beam_size: int = 1
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    condition_on_previous_text: bool = False

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, not {self.beam_size}")
        temperature = self.temperature
        if isinstance(temperature, int | float):
            temperature = (float(temperature),)
        temperature = tuple(float(t) for t in temperature)
        if not temperature or any(t < 0 for t in temperature):
            raise ValueError("temperature must be one or more values >= 0")
        object.__setattr__(self, "temperature", temperature)
        if self.language is not None:
            object.__setattr__(self, "language", self.language.strip().lower() or None)


def keep_segment(segment: Segment, options: TranscribeOptions) -> bool:
    """False for segments that are most likely invented on silence, music or noise.

    - A decode whose average log probability stays under `log_prob_threshold` after the
      whole temperature fallback. Whisper keeps these unless the window also looks silent;
      we drop them: on a steady tone tiny.en then "hears" "Thanks for watching!" or
      "Beep, beep" in about one run out of five (the fallback samples), while on speech it
      clears the threshold easily (about -0.4 on the test clip).
    - A repetition loop that survived the fallback (compression ratio over its threshold).
    - Low word confidence in a window the model itself calls silent (its "you" on silence).
    """
    if not segment.text.strip() or not math.isfinite(segment.avg_logprob):
        return False
    if options.log_prob_threshold is not None and segment.avg_logprob < options.log_prob_threshold:
        return False
    if (
        options.compression_ratio_threshold is not None
        and segment.compression_ratio > options.compression_ratio_threshold
    ):
        return False
    silent = (
        options.no_speech_threshold is not None
        and segment.no_speech_prob > options.no_speech_threshold
    )
    if silent and segment.words:
        mean_probability = sum(word.probability for word in segment.words) / len(segment.words)
        if mean_probability < MIN_MEAN_WORD_PROBABILITY:
            return False
    return True


class TranscriptionEngine(Protocol):
    """A loaded Whisper model. Thread-safe: one engine serves concurrent jobs."""

    name: str
    model: str

    def transcribe(
        self,
        audio_path: Path,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> TranscriptResult: ...


def transcribe_audio(
    audio_path: str | Path,
    engine: TranscriptionEngine,
    options: TranscribeOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> TranscriptResult:
    """Transcribe the audio file with a loaded engine.

    Progress is the share of audio seconds transcribed; it reaches 1.0 at the end.
    Raises MediaError (missing or unreadable audio), TranscriptionError or StageCancelled.
    """
    if cancel.cancelled:
        raise StageCancelled("Cancelled before transcription started")
    return engine.transcribe(Path(audio_path), options, progress, cancel)


# ----------------------------------------------------------------------------- cache

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
    from pipeline import whisper_engines  # the engines import this module's types

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
