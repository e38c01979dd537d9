"""The per-stage option groups a job carries, built once from its stored options.

A leaf module: frozen dataclasses and the one function, `stage_options`, that reads a job's
options (a validated `ProcessingOptions`, stored as JSON) into them. Stages and model
deployments take these dataclasses; nothing reads the options mapping again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

AudioFormat = Literal["wav", "mp3", "flac"]
AudioQuality = Literal["low", "medium", "high"]
OutputFormat = Literal["mp4", "webm"]
Resolution = Literal["360p", "480p", "720p", "1080p", "source"]
AspectRatio = Literal["source", "16:9", "9:16", "1:1"]
AspectMode = Literal["crop", "blur"]
Task = Literal["transcribe", "translate"]
# Whisper's temperature fallback: each window decoded again, hotter, while it decodes badly
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


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
    model: str | None = None  # the Whisper model for this job; None: the replica's default
    word_timestamps: bool = True
    vad_filter: bool = True  # Silero VAD: only speech reaches the decoder (faster-whisper)
    beam_size: int = 5  # the accurate preset (storage.schemas.PRESET_BEAM_SIZES)
    temperature: tuple[float, ...] = TEMPERATURES
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    condition_on_previous_text: bool = False
    task: Task = "transcribe"  # translate: English text whatever the language spoken
    initial_prompt: str | None = None  # primes the decoder in every window
    # Speaker diarization after transcription (pipeline.diarization): labels on segments
    # and words. num_speakers fixes the count; else it is estimated within min..max.
    diarization: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

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
    # None: grows with the transcript (see pipeline.analysis.summary.summary_length)
    summary_sentences: int | None = None
    language: str | None = None  # "en", "de", ...; None: the detected language, else a guess


@dataclass(frozen=True)
class ClipRange:
    """A range of the video to cut as a clip exactly (`options.segments`), in seconds."""

    start_s: float
    end_s: float
    title: str | None = None


@dataclass(frozen=True)
class ClipOptions:
    """How the clips stage chooses and cuts clips."""

    clip_duration_s: float = 30.0  # target length of a chosen clip
    overlap_duration_s: float = 2.0  # chosen clips overlap by at most this
    max_clips: int = 10
    min_confidence: float = 0.5  # minimum highlight score of a chosen clip
    ranges: tuple[ClipRange, ...] = ()  # cut exactly these instead of choosing
    output_format: OutputFormat = "mp4"
    resolution: Resolution = "source"
    aspect_ratio: AspectRatio = "source"
    aspect_mode: AspectMode = "crop"
    burn_captions: bool = False
    fast_cut: bool = True  # stream-copy between keyframes; False re-encodes whole clips


@dataclass(frozen=True)
class StageOptions:
    """A job's options, one group per stage that reads them."""

    audio: AudioOptions = field(default_factory=AudioOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    analyze: AnalyzeOptions = field(default_factory=AnalyzeOptions)
    clips: ClipOptions = field(default_factory=ClipOptions)


def _picked(cls: type, options: Mapping[str, Any], **renamed: Any) -> Any:
    """`cls` built from the option keys named like its fields (absent or null keys keep
    the field's default: jobs stored by older versions lack newer options)."""
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in options.items() if k in names and v is not None}
    values.update({k: v for k, v in renamed.items() if v is not None})
    return cls(**values)


def temperatures(first: float, fallback: bool) -> tuple[float, ...]:
    """The temperatures a window is decoded at: `first`, then (with `fallback`) Whisper's
    steps above it."""
    if not fallback:
        return (float(first),)
    return (float(first), *(t for t in TEMPERATURES if t > first))


def stage_options(options: Mapping[str, Any]) -> StageOptions:
    """The stage option groups of a job's stored options (`ProcessingOptions` as JSON)."""
    ranges = tuple(
        ClipRange(float(r["start"]), float(r["end"]), r.get("title"))
        for r in options.get("segments") or ()
    )
    fallback = temperatures(
        options.get("temperature") or 0.0, options.get("temperature_fallback", True)
    )
    return StageOptions(
        audio=_picked(AudioOptions, options),
        transcribe=_picked(
            TranscribeOptions,
            options,
            model=options.get("model_size"),
            temperature=fallback,
            language=options.get("language") or None,
        ),
        analyze=_picked(AnalyzeOptions, options),
        clips=_picked(
            ClipOptions,
            options,
            clip_duration_s=options.get("clip_duration"),
            overlap_duration_s=options.get("overlap_duration"),
            ranges=ranges,
        ),
    )
