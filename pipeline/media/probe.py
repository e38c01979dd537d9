"""What a media file holds, read in-process with PyAV (libavformat) instead of a subprocess.

`probe` opens the container, lists its streams (codec, profile, level, pixel format, bit
rate, frame rates, sample rate, channels and layout) and its duration, and reads the
display rotation of the video. Every `av.error` becomes a `MediaError` in `media_error`,
the one place that knows their codes, so callers never see PyAV's exceptions.

The rotation: FFmpeg keeps a stream's display matrix in side data that PyAV does not
expose on the stream, only on decoded frames, so the first keyframe is decoded (one
thread, nothing else decoded, the loop filter and IDCT skipped: a few milliseconds at
1080p, a few tens at 4K). A `rotate` metadata tag does not count: FFmpeg stopped turning
it into a matrix, and ffmpeg's decoding (which turns the picture upright for the cuts)
ignores it, so sizes planned from it would be wrong.

No second try: the `ffmpeg -i` subprocess this replaces was asked twice when it died
without a word (it did, twice, under heavy load); in-process, every failure comes back
as an FFmpeg error code, and the same file gives the same one.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pipeline.errors import MediaError

PROBE_TIMEOUT_S = 60.0  # for opening the file, and for each read after
_ROTATION_PACKETS = 1000  # packets before the first keyframe, at most, to find it
_LEVEL_UNKNOWN = -99  # AV_LEVEL_UNKNOWN
_AVFMT_FLAG_GENPTS = 0x0001  # av.container.Flags.gen_pts
_LOW_SCORE_HINT = "detected only with low score"  # the demuxer was guessed from the name
_log_lock = threading.Lock()


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the container, as its codec parameters describe it."""

    index: int
    kind: str  # "video", "audio", "subtitle", "data", "attachment" or "unknown"
    codec: str | None = None  # the codec's name ("h264", "aac", "mp3"), not its decoder's
    profile: str | None = None  # "High", "LC"...
    level: int | None = None  # as the codec counts it (H.264: 31 for level 3.1)
    bit_rate: int | None = None  # bits/s, when the container says
    duration_s: float | None = None
    language: str | None = None
    attached_pic: bool = False  # cover art in an audio file: a picture, not a video
    width: int | None = None
    height: int | None = None
    pixel_format: str | None = None
    avg_fps: float | None = None  # frames / duration ("fps" in ffmpeg's summary)
    r_fps: float | None = None  # the lowest rate all timestamps fit ("tbr")
    rotation: int = 0  # see MediaInfo.rotation
    sample_rate_hz: int | None = None
    channels: int | None = None
    channel_layout: str | None = None  # "mono", "stereo", "5.1"...


@dataclass(frozen=True)
class MediaInfo:
    """A file's container and its first video and audio stream (all streams in `streams`)."""

    format_name: str
    duration_s: float | None
    has_video: bool
    has_audio: bool
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_sample_rate_hz: int | None = None
    audio_channels: int | None = None
    # Degrees (0, 90, 180, 270) a player turns the video counter-clockwise, from its
    # display matrix: phones record upright video sideways and say so there.
    rotation: int = 0
    start_s: float | None = None
    bit_rate: int | None = None  # of the whole file, bits/s
    streams: tuple[StreamInfo, ...] = ()

    @property
    def is_still_image(self) -> bool:
        # png/jpeg/webp files open as a one-frame "video" through the image demuxers
        return self.format_name == "image2" or self.format_name.endswith("_pipe")

    @property
    def video(self) -> StreamInfo | None:
        """The video stream the facts above describe (cover art is not one)."""
        return next((s for s in self.streams if s.kind == "video" and not s.attached_pic), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)


# ----------------------------------------------------------------------------- probe


def probe(path: str | os.PathLike[str], *, timeout_s: float = PROBE_TIMEOUT_S) -> MediaInfo:
    """Describe a media file. Raises MediaError for missing, non-media or unreadable files.

    `timeout_s` bounds the opening and each read after it: a file whose demuxer spins
    without getting anywhere is called corrupt. A file that opens but holds neither video
    nor audio (subtitles only, say) is described, not refused: callers say what they missed.
    """
    path = Path(path)
    check_file(path)
    try:
        with open_media(path, timeout_s) as container:
            return _describe(container)
    except av.error.FFmpegError as exc:
        raise media_error(path, exc, opening=True, timeout_s=timeout_s) from None


def check_file(path: Path) -> None:
    """Refuse a path that is not a file, or an empty one, before FFmpeg sees it."""
    if not path.is_file():
        raise MediaError(f"The file {path.name} does not exist", code="file_missing")
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty, not a video or audio file", code="not_media")


def open_media(path: Path, timeout_s: float = PROBE_TIMEOUT_S) -> Any:
    """`av.open` for reading, with the timeout; use it as a context manager (it closes).

    Packets keep the timestamps the file has, as ffmpeg reads them: PyAV asks libavformat
    to make up missing presentation times (AVI with B-frames has none), which would give
    keyframe times a stream copy by ffmpeg cannot cut at.
    """
    container = av.open(
        str(path), mode="r", metadata_errors="replace", timeout=(timeout_s, timeout_s)
    )
    container.flags &= ~_AVFMT_FLAG_GENPTS
    return container


def _describe(container: Any) -> MediaInfo:
    streams = tuple(_stream_info(stream) for stream in container.streams)
    video = next((s for s in streams if s.kind == "video" and not s.attached_pic), None)
    if video is not None:
        video = replace(video, rotation=_rotation(container, container.streams[video.index]))
        streams = tuple(video if s.index == video.index else s for s in streams)
    audio = next((s for s in streams if s.kind == "audio"), None)
    return MediaInfo(
        format_name=container.format.name,
        duration_s=_microseconds(container.duration),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=video.codec if video else None,
        audio_codec=audio.codec if audio else None,
        width=video.width if video else None,
        height=video.height if video else None,
        fps=video.avg_fps if video else None,
        audio_sample_rate_hz=audio.sample_rate_hz if audio else None,
        audio_channels=audio.channels if audio else None,
        rotation=video.rotation if video else 0,
        start_s=_microseconds(container.start_time),
        bit_rate=container.bit_rate or None,
        streams=streams,
    )


def _stream_info(stream: Any) -> StreamInfo:
    context = stream.codec_context  # None when this build has no decoder for the codec
    facts: dict[str, Any] = {}
    if context is not None:
        level = context.level
        facts.update(
            codec=context.codec.canonical_name,
            profile=context.profile or None,
            level=level if level not in (None, _LEVEL_UNKNOWN) else None,
            bit_rate=context.bit_rate or None,
        )
    if stream.type == "video" and context is not None:
        facts.update(
            width=context.width or None,
            height=context.height or None,
            pixel_format=context.pix_fmt,
            avg_fps=_rate(stream.average_rate),
            r_fps=_rate(stream.base_rate),
        )
    elif stream.type == "audio" and context is not None:
        facts.update(
            sample_rate_hz=context.sample_rate or None,
            channels=context.channels or None,
            channel_layout=context.layout.name,
        )
    duration = stream.duration
    return StreamInfo(
        index=stream.index,
        kind=stream.type,
        duration_s=float(duration * stream.time_base) if duration and stream.time_base else None,
        language=stream.language,
        attached_pic=bool(stream.disposition & av.stream.Disposition.attached_pic),
        **facts,
    )


def _rate(rate: Fraction | None) -> float | None:
    return float(rate) if rate else None


def _microseconds(value: int | None) -> float | None:
    return value / 1_000_000 if value is not None else None


def _rotation(container: Any, stream: Any) -> int:
    """Degrees the display matrix turns the video, as ffmpeg turns it when it decodes."""
    degrees = _matrix_rotation(container, stream)
    return round(degrees / 90) * 90 % 360 if math.isfinite(degrees) else 0


def _matrix_rotation(container: Any, stream: Any) -> float:
    """The rotation on the first keyframe: the decoder skips the packets before it and is
    drained right after it (a decoder holding frames back for B-frame reordering would
    otherwise wait for the next keyframe)."""
    context = stream.codec_context
    if context is None:
        return 0.0
    context.thread_type = "NONE"  # one thread: frame threads would each want a frame first
    context.thread_count = 1
    context.skip_frame = "NONKEY"
    # the picture itself is thrown away: skip its finest work
    context.options = {"skip_loop_filter": "all", "skip_idct": "all"}
    try:
        for count, packet in enumerate(container.demux(stream)):
            if not packet.size or count >= _ROTATION_PACKETS:
                break
            for frame in context.decode(packet):
                return float(frame.rotation)
            if packet.is_keyframe:
                break
        for frame in context.decode(None):
            return float(frame.rotation)
    except (av.error.FFmpegError, ValueError):
        pass  # an undecodable start: the stream's facts stand; cutting will say more
    return 0.0


# ----------------------------------------------------------------------------- errors


def media_error(
    path: Path, exc: Exception, *, opening: bool = False, timeout_s: float = PROBE_TIMEOUT_S
) -> MediaError:
    """The MediaError for an `av.error` raised while opening (`opening`) or reading `path`.

    Opening fails with one code, "invalid data", whether no demuxer knew the bytes (not
    media) or one did and choked on them (a truncated download, a corrupt header). FFmpeg's
    log tells them apart, and PyAV keeps it quiet, so the file is opened once more with
    the log captured.
    """
    name = path.name
    if isinstance(exc, FileNotFoundError):  # av.error.FileNotFoundError is one
        return MediaError(f"The file {name} does not exist", code="file_missing")
    if isinstance(exc, av.error.ExitError):  # the timeout's interrupt
        return MediaError(
            f"Reading {name} took longer than {timeout_s:.0f} s; the file looks corrupt",
            code="corrupt_media",
        )
    if isinstance(exc, av.error.InvalidDataError):
        if opening:
            return _unopenable(path, timeout_s)
        return MediaError(
            f"{name} is truncated or corrupt and cannot be read ({exc.strerror})",
            code="corrupt_media",
        )
    if isinstance(exc, av.error.MemoryError):  # memory pressure: may pass
        return MediaError(
            f"Out of memory while reading {name}", code="ffmpeg_failed", retryable=True
        )
    why = exc.strerror if isinstance(exc, av.error.FFmpegError) else str(exc)
    return MediaError(f"{name} cannot be read: {why}", code="unreadable_file")


def _unopenable(path: Path, timeout_s: float) -> MediaError:
    logs = _open_log(path, timeout_s)
    reasons = [message.strip() for _, _, message in logs if _LOW_SCORE_HINT not in message]
    if not reasons or any(_LOW_SCORE_HINT in message for _, _, message in logs):
        return MediaError(f"{path.name} is not a video or audio file", code="not_media")
    return MediaError(
        f"{path.name} is truncated or corrupt and cannot be read ({reasons[-1]})",
        code="corrupt_media",
    )


def _open_log(path: Path, timeout_s: float) -> list[tuple[int, str, str]]:
    """FFmpeg's warnings and errors while opening `path`.

    PyAV's log level is global: it is raised only for this open (under a lock) and put
    back after. Capture keeps this thread's messages; another thread's warnings in that
    moment go to Python's "libav" logger.
    """
    with _log_lock:
        previous, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.WARNING)
        av.logging.set_skip_repeated(False)  # the same reason as last time still counts
        try:
            with av.logging.Capture() as logs, contextlib.suppress(av.error.FFmpegError):
                open_media(path, timeout_s).close()
        finally:
            av.logging.set_level(previous)
            av.logging.set_skip_repeated(skip_repeated)
    return [log for log in logs if log[0] <= av.logging.WARNING]
