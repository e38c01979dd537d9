"""Stage 2: extract the audio track of the downloaded media with ffmpeg."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import MediaError, StageCancelled
from pipeline.media.ffmpeg import has_encoder, remove_quietly, run_ffmpeg
from pipeline.media.probe import probe
from pipeline.options import AudioFormat, AudioOptions, AudioQuality
from pipeline.results import AudioResult
from pipeline.types import CancelToken, ProgressCallback

AUDIO_STEM = "audio"


@dataclass(frozen=True)
class QualityPreset:
    """What an `audio_quality` means. Channels are a ceiling: mono stays mono."""

    sample_rate_hz: int
    max_channels: int
    mp3_bitrate_kbps: int


# low suits speech recognition (Whisper works on 16 kHz mono); medium is CD quality; high
# is the usual rate of video soundtracks. wav (16-bit PCM) and flac are lossless at these
# rates; only mp3 uses the bitrate.
QUALITY_PRESETS: dict[AudioQuality, QualityPreset] = {
    "low": QualityPreset(sample_rate_hz=16000, max_channels=1, mp3_bitrate_kbps=64),
    "medium": QualityPreset(sample_rate_hz=44100, max_channels=2, mp3_bitrate_kbps=128),
    "high": QualityPreset(sample_rate_hz=48000, max_channels=2, mp3_bitrate_kbps=320),
}

# format -> (ffmpeg muxer, encoder arguments without the bitrate)
_ENCODERS: dict[AudioFormat, tuple[str, list[str]]] = {
    "wav": ("wav", ["-c:a", "pcm_s16le"]),
    "mp3": ("mp3", ["-c:a", "libmp3lame"]),
    "flac": ("flac", ["-c:a", "flac", "-sample_fmt", "s16"]),
}
# A demuxer line that means the input ends before its own index says it should.
_TRUNCATED_HINT = "partial file"


# the first audio track, without video, subtitles, data streams or the source's metadata
_FIRST_AUDIO_ONLY = ("-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1")


def extract_audio(
    src: Path,
    dest_dir: Path,
    options: AudioOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> AudioResult:
    """Write the first audio track of `src` to `dest_dir/audio.<format>`.

    Raises MediaError (no_audio, not_media, corrupt_media, ffmpeg_failed,
    encoder_unavailable) or StageCancelled; a half-written file is never left behind.
    """
    if cancel.cancelled:
        raise StageCancelled("Cancelled before audio extraction started")
    if options.audio_format not in _ENCODERS:
        raise ValueError(f"unknown audio format {options.audio_format!r}")
    preset = QUALITY_PRESETS[options.audio_quality]
    muxer, codec_args = _ENCODERS[options.audio_format]
    if options.audio_format == "mp3" and not has_encoder("libmp3lame"):
        raise MediaError("This ffmpeg build cannot encode mp3", code="encoder_unavailable")

    source = probe(src)
    if not source.has_audio:
        raise MediaError("The video has no audio track", code="no_audio")
    channels = min(preset.max_channels, source.audio_channels or preset.max_channels)
    bitrate_kbps: int | None = None
    if options.audio_format == "mp3":
        bitrate_kbps = preset.mp3_bitrate_kbps
        codec_args = [*codec_args, "-b:a", f"{bitrate_kbps}k"]
    elif options.audio_format == "wav":
        bitrate_kbps = preset.sample_rate_hz * channels * 16 // 1000

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / f"{AUDIO_STEM}.{options.audio_format}"
    partial = dest_dir / f".{AUDIO_STEM}-{uuid.uuid4().hex[:8]}.{options.audio_format}.part"
    output_args = ["-ac", str(channels), "-ar", str(preset.sample_rate_hz), *codec_args]
    args = ["-i", str(src), *_FIRST_AUDIO_ONLY, *output_args, "-f", muxer, str(partial)]

    def report(fraction: float, message: str) -> None:
        progress(fraction, f"extracting audio: {message}")

    try:
        errors = run_ffmpeg(
            args, expected_duration_s=source.duration_s, progress=report, cancel=cancel
        )
        if any(_TRUNCATED_HINT in line for line in errors):
            raise MediaError(
                "The media file is truncated: its audio stops before the end",
                code="corrupt_media",
            )
        output = probe(partial)
        partial.replace(final)
    except BaseException:
        remove_quietly(partial)
        raise
    return AudioResult(
        path=str(final),
        audio_format=options.audio_format,
        duration_s=output.duration_s or 0.0,
        size_bytes=final.stat().st_size,
        sample_rate_hz=output.audio_sample_rate_hz or preset.sample_rate_hz,
        channels=output.audio_channels or channels,
        bitrate_kbps=bitrate_kbps,
    )
