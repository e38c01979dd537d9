"""The per-stage option groups a job carries, built once from its stored options.

A leaf module: frozen dataclasses and the one function, `stage_options`, that reads a job's
options (a validated `ProcessingOptions`, stored as JSON) into them. Stages and model
deployments take these dataclasses; nothing reads the options mapping again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AudioFormat = Literal["wav", "mp3", "flac"]
AudioQuality = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class FetchOptions:
    allow_private_urls: bool = False
    max_download_bytes: int | None = None
    max_media_duration_s: float | None = None
    socket_timeout_s: float = 30.0


@dataclass(frozen=True)
class AudioOptions:
    audio_format: AudioFormat = "wav"
    audio_quality: AudioQuality = "medium"


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


@dataclass(frozen=True)
class AnalyzeOptions:
    sentiment_analysis: bool = True
    topic_modeling: bool = True
    keyword_extraction: bool = True
    min_confidence: float = 0.5  # topics below this calibrated confidence are dropped
    max_keywords: int = 10
    max_topics: int = 5
    summary_sentences: int = 3
    language: str | None = None  # "en", "de", ...; None: the detected language, else a guess
