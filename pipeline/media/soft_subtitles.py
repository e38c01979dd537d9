"""The `subtitles` stage of full_processing: the whole video with its transcript as a
subtitle track that players can switch on and off.

No re-encoding: picture and sound are stream-copied, only the SRT is converted. MP4 sources
whose codecs MP4 carries get an MP4 with a `mov_text` track (what phones and browsers play);
anything else goes into Matroska with an SRT track, which takes every codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.media.ffmpeg import remove_quietly, run_ffmpeg
from pipeline.media.probe import MediaInfo, probe
from pipeline.types import CancelToken, ProgressCallback

STEM = "video_subtitled"
_MP4_VIDEO = {"h264", "hevc", "av1", "mpeg4"}
_MP4_AUDIO = {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"}
# ISO 639-1 -> 639-2/B, as MP4 and Matroska tag tracks (the common Whisper languages)
_LANGUAGE_TAGS = {
    "en": "eng", "de": "ger", "fr": "fre", "es": "spa", "it": "ita", "pt": "por", "nl": "dut",
    "ru": "rus", "zh": "chi", "ja": "jpn", "ko": "kor", "ar": "ara", "hi": "hin", "pl": "pol",
    "tr": "tur", "sv": "swe", "uk": "ukr", "cs": "cze", "el": "gre", "fi": "fin", "da": "dan",
}  # fmt: skip


@dataclass(frozen=True)
class SubtitledVideo:
    path: str
    container: str  # "mp4" or "mkv"
    duration_s: float | None


def container_for(info: MediaInfo) -> str:
    """mp4 when the source's streams fit in MP4 as they are, else mkv."""
    fits = (
        "mp4" in info.format_name
        and (info.video_codec or "") in _MP4_VIDEO
        and (not info.has_audio or (info.audio_codec or "") in _MP4_AUDIO)
    )
    return "mp4" if fits else "mkv"


def mux_subtitles(
    source: Path,
    srt: Path,
    dest_dir: Path,
    language: str | None,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> SubtitledVideo:
    """Write `dest_dir/video_subtitled.<mp4|mkv>`: `source` with `srt` as a subtitle track."""
    info = probe(source)
    container = container_for(info)
    out = dest_dir / f"{STEM}.{container}"
    tag = _LANGUAGE_TAGS.get((language or "").split("-")[0], "und")
    args = ["-i", str(source), "-i", str(srt), "-map", "0:v?", "-map", "0:a?", "-map", "1:0"]
    args += ["-c", "copy", "-c:s", "mov_text" if container == "mp4" else "srt"]
    args += ["-metadata:s:s:0", f"language={tag}", "-metadata:s:s:0", "title=Transcript"]
    if container == "mp4":
        args += ["-movflags", "+faststart"]
    args.append(str(out))
    try:
        run_ffmpeg(args, expected_duration_s=info.duration_s, progress=progress, cancel=cancel)
    except BaseException:
        remove_quietly(out)
        raise
    return SubtitledVideo(path=str(out), container=container, duration_s=info.duration_s)
