"""The media probing the pipeline did before PyAV, kept for the benchmarks only: the baseline
that `bench/clips.py` times `pipeline.media.probe` and `keyframe_times` against.

- `ffmpeg_stderr_probe(path)`: `ffmpeg -i FILE` in a subprocess, its stream summary on
  stderr parsed with regular expressions (the old `pipeline.media.ffmpeg.probe`, without
  its error classification: the bench's media is valid).
- `framecrc_keyframe_times(path)`: every video packet header listed by `ffmpeg -c copy -f
  framecrc` (IDR pictures only for H.264, through `filter_units`), parsed, then the same
  `clean_keyframes` as the pipeline's.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from pipeline.clips.keyframes import Packet, clean_keyframes
from pipeline.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from pipeline.media.probe import MediaInfo

_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from ")
_DURATION_RE = re.compile(r"^\s+Duration: (?:(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)|N/A)")
_STREAM_RE = re.compile(r"^\s+Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<rest>.*)$")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_FPS_RE = re.compile(r"^([\d.]+)(k?) fps$")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_CHANNELS_RE = re.compile(r"^(\d+) channels\b")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "4.1": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "hexagonal": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
    "7.1(wide)": 8,
    "7.1(wide-side)": 8,
    "octagonal": 8,
}
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)")
_FLAG_KEY = 0x1
_FLAG_DISCARD = 0x4
_NAL_IDR = 5


def ffmpeg_stderr_probe(path: str | Path) -> MediaInfo:
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    info = _parse_probe(completed.stderr.decode("utf-8", errors="replace"))
    if info is None:
        raise RuntimeError(f"ffmpeg could not read {path}")
    return info


def _split_top_level(text: str) -> list[str]:
    """Split "h264 (High), yuv420p(tv, bt709), 1280x720" on commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_probe(stderr: str) -> MediaInfo | None:
    fmt: str | None = None
    duration_s: float | None = None
    fields: dict[str, object] = {}
    in_video = False
    for line in stderr.splitlines():
        if fmt is None:
            if match := _INPUT_RE.match(line):
                fmt = match["fmt"]
            continue
        if line.lstrip().startswith("Stream #"):
            in_video = False
        elif in_video and (match := _ROTATION_RE.search(line)):
            fields["rotation"] = round(float(match[1]) / 90) * 90 % 360
            continue
        if (match := _DURATION_RE.match(line)) and match["h"] is not None:
            duration_s = int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])
        elif match := _STREAM_RE.match(line):
            in_video = _stream_fields(match["kind"], match["rest"], fields)
    if fmt is None:
        return None
    return MediaInfo(
        format_name=fmt,
        duration_s=duration_s,
        has_video="video_codec" in fields,
        has_audio="audio_codec" in fields,
        **fields,  # type: ignore[arg-type]
    )


def _stream_fields(kind: str, rest: str, fields: dict[str, object]) -> bool:
    """Fill `fields` from a stream line; True when it is the video stream described."""
    parts = _split_top_level(rest)
    codec = parts[0].split()[0] if parts[0] else None
    if kind == "Video" and "video_codec" not in fields and "(attached pic)" not in rest:
        fields["video_codec"] = codec
        for part in parts[1:]:
            if size := _SIZE_RE.match(part):
                fields["width"], fields["height"] = int(size[1]), int(size[2])
            elif fps := _FPS_RE.match(part):
                fields["fps"] = float(fps[1]) * (1000 if fps[2] else 1)
        return True
    if kind == "Audio" and "audio_codec" not in fields:
        fields["audio_codec"] = codec
        for index, part in enumerate(parts[1:], start=1):
            if hz := _HZ_RE.match(part):
                fields["audio_sample_rate_hz"] = int(hz[1])
                if index + 1 < len(parts):
                    fields["audio_channels"] = _channel_count(parts[index + 1])
    return False


def _channel_count(layout: str) -> int | None:
    if match := _CHANNELS_RE.match(layout):
        return int(match[1])
    return _LAYOUT_CHANNELS.get(layout.split(" ")[0])


def framecrc_keyframe_times(source: str | Path) -> list[float]:
    only_idr = ffmpeg_stderr_probe(source).video_codec == "h264"
    limit = ["-bsf:v", f"filter_units=pass_types={_NAL_IDR}"] if only_idr else []
    with tempfile.TemporaryDirectory(prefix="vpa-bench-framecrc-") as tmp:
        listing = Path(tmp) / "packets.crc"
        args = ["-i", str(source), "-map", "0:v:0", "-c", "copy", *limit]
        run_ffmpeg(
            [*args, "-f", "framecrc", str(listing)],
            expected_duration_s=None,
            progress=None,
            cancel=None,
        )
        text = listing.read_text(encoding="ascii", errors="replace")
    return clean_keyframes(parse_framecrc(text))


def parse_framecrc(text: str) -> list[Packet]:
    """Parse `ffmpeg -f framecrc` output for stream 0 (dts, pts, duration in its time base)."""
    time_base: Fraction | None = None
    packets: list[Packet] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if match := _TB_RE.match(line):
                time_base = Fraction(int(match[1]), int(match[2]))
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 6 or fields[0] != "0" or time_base is None:
            continue
        flags = _FLAG_KEY
        for extra in fields[6:]:
            if extra.startswith("F=0x"):
                flags = int(extra[4:], 16)
        packets.append(
            Packet(
                dts_s=_seconds(fields[1], time_base),
                pts_s=_seconds(fields[2], time_base),
                duration_s=float(int(fields[3]) * time_base),
                keyframe=bool(flags & _FLAG_KEY) and not flags & _FLAG_DISCARD,
            )
        )
    return packets


def _seconds(value: str, time_base: Fraction) -> float | None:
    ticks = int(value)
    if ticks <= -(2**62):  # AV_NOPTS_VALUE
        return None
    return float(ticks * time_base)
