"""Options and results of the pipeline stages: plain frozen dataclasses, no Ray, no DB."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

# progress(fraction in [0, 1], human message). Stages call it often; callers throttle.
ProgressCallback = Callable[[float, str], None]

AudioFormat = Literal["wav", "mp3", "flac"]
AudioQuality = Literal["low", "medium", "high"]


class CancelToken:
    """Set by the runner when the job is cancelled; stages poll it between chunks of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class FetchOptions:
    allow_private_urls: bool = False
    max_download_bytes: int | None = None
    max_media_duration_s: float | None = None
    socket_timeout_s: float = 30.0


@dataclass(frozen=True)
class FetchResult:
    path: str
    title: str | None
    duration_s: float | None
    size_bytes: int
    extractor: str | None = None
    webpage_url: str | None = None


@dataclass(frozen=True)
class AudioOptions:
    audio_format: AudioFormat = "wav"
    audio_quality: AudioQuality = "medium"


@dataclass(frozen=True)
class AudioResult:
    path: str
    audio_format: AudioFormat
    duration_s: float
    size_bytes: int
    sample_rate_hz: int
    channels: int
    bitrate_kbps: int | None
