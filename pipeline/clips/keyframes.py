"""Where a video can be cut without re-encoding, and what its H.264 stream looks like.

A stream copy can only begin at a keyframe that starts a closed group of pictures: one
whose following pictures (in decoding order) never show before it. `keyframe_times` reads
every packet header once with `ffmpeg -c copy -f framecrc` (no decoding, so a 10-minute
720p file takes well under a second) and keeps the keyframes where a cut can begin cleanly.
For H.264 only IDR pictures qualify (listed with the `filter_units` bitstream filter): the
keyframe flag also marks the I pictures of open GOPs, and a decoder cannot start cleanly at
one. For other codecs, a keyframe whose group shows a picture before it is left out.

`plan_smart` splits a clip at its first and last such keyframe. `h264_stream` reads the
source's sequence parameter set (profile, level) and decoder delay, and `x264_matching`
turns them into libx264 settings, so the re-encoded head and tail look like the copied
middle to a decoder: same profile and level, same B-frame reordering delay. (A different
delay makes the decoding times of the joined pieces run backwards, and a decoder meeting
a new reorder depth mid-stream can repeat a frame.)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import MediaError
from pipeline.media.ffmpeg import probe, run_ffmpeg
from pipeline.types import CancelToken

X264_PIECE_CRF = 18  # head and tail sit next to copied source frames: keep them close
X264_PIECE_PRESET = "superfast"  # a second or two of frames per end: speed over size
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)")
_FLAG_KEY = 0x1
_FLAG_DISCARD = 0x4
_NAL_IDR = 5
_NAL_SPS = 7
# profile_idc -> the libx264 profile that produces it
_X264_PROFILES = {
    66: "baseline",
    77: "main",
    100: "high",
    110: "high10",
    122: "high422",
    244: "high444",
}


@dataclass(frozen=True)
class Packet:
    """One video packet as framecrc lists it, times in seconds."""

    dts_s: float | None
    pts_s: float | None
    duration_s: float
    keyframe: bool


@dataclass(frozen=True)
class H264Stream:
    """What the re-encoded pieces of a smart cut must match in the source's H.264 stream."""

    profile_idc: int
    level_idc: int
    reorder_delay_frames: int  # how many frames the decoding times lag the presentation

    @property
    def x264_profile(self) -> str | None:
        return _X264_PROFILES.get(self.profile_idc)

    @property
    def level(self) -> str | None:
        return f"{self.level_idc / 10:.1f}" if self.level_idc >= 10 else None


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


def clean_keyframes(packets: Iterable[Packet]) -> list[float]:
    """Presentation times of the keyframes no later packet of their group shows before."""
    times: list[float] = []
    group_pts: float | None = None
    group_clean = False
    for packet in packets:
        if packet.keyframe and packet.pts_s is not None:
            if group_pts is not None and group_clean:
                times.append(group_pts)
            group_pts, group_clean = packet.pts_s, True
        elif group_pts is not None and packet.pts_s is not None and packet.pts_s < group_pts:
            group_clean = False  # a leading picture of an open GOP
    if group_pts is not None and group_clean:
        times.append(group_pts)
    return sorted(set(times))


def _framecrc(source: str | Path, limit_args: list[str], cancel: CancelToken | None) -> str:
    with tempfile.TemporaryDirectory(prefix="vpa-keyframes-") as tmp:
        listing = Path(tmp) / "packets.crc"
        args = ["-i", str(source), "-map", "0:v:0", "-c", "copy", *limit_args]
        run_ffmpeg(
            [*args, "-f", "framecrc", str(listing)],
            expected_duration_s=None,
            progress=None,
            cancel=cancel,
        )
        return listing.read_text(encoding="ascii", errors="replace")


def keyframe_times(source: str | Path, cancel: CancelToken | None = None) -> list[float]:
    """Presentation times (s, from the start of the file) where a stream copy can begin.

    For H.264 these are the IDR pictures: a keyframe flag also marks the I pictures of open
    GOPs, which a decoder cannot start from cleanly. Raises MediaError when the file cannot
    be read or has no video stream.
    """
    info = probe(source)
    if not info.has_video:
        raise MediaError(
            f"{Path(source).name} has no video track; clips need one", code="no_video_stream"
        )
    only_idr = ["-bsf:v", f"filter_units=pass_types={_NAL_IDR}"]
    limit = only_idr if info.video_codec == "h264" else []
    return clean_keyframes(parse_framecrc(_framecrc(source, limit, cancel)))


_CACHE_ENTRIES = 32
_stream_cache: dict[tuple[str, int, int], H264Stream] = {}


def _file_key(source: str | Path) -> tuple[str, int, int]:
    """Identifies a file's content cheaply: several clips of one source read it once."""
    stat = os.stat(source)
    return str(Path(source).resolve()), stat.st_size, stat.st_mtime_ns


def _remember(
    cache: dict[tuple[str, int, int], Any], key: tuple[str, int, int], value: Any
) -> None:
    if len(cache) >= _CACHE_ENTRIES:
        cache.pop(next(iter(cache)))
    cache[key] = value


def h264_stream(source: str | Path, cancel: CancelToken | None = None) -> H264Stream:
    """Profile, level and reordering delay of the first H.264 video stream of `source`
    (remembered per file, so the clips of one source look once)."""
    key = _file_key(source)
    if key not in _stream_cache:
        _remember(_stream_cache, key, _read_h264_stream(source, cancel))
    return _stream_cache[key]


def _read_h264_stream(source: str | Path, cancel: CancelToken | None) -> H264Stream:
    with tempfile.TemporaryDirectory(prefix="vpa-h264-") as tmp:
        first = Path(tmp) / "first.h264"
        listing = Path(tmp) / "first.crc"
        args = ["-i", str(source), "-map", "0:v:0", "-c", "copy", "-frames:v", "1"]
        args += ["-bsf:v", "h264_mp4toannexb", "-f", "h264", str(first)]
        args += ["-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "framecrc", str(listing)]
        run_ffmpeg(args, expected_duration_s=None, progress=None, cancel=cancel)
        sps = _first_sps(first.read_bytes())
        packets = parse_framecrc(listing.read_text(encoding="ascii", errors="replace"))
    if sps is None or not packets:
        raise MediaError("The H.264 stream has no sequence parameter set", code="corrupt_media")
    return H264Stream(
        profile_idc=sps[1], level_idc=sps[3], reorder_delay_frames=_reorder_delay(packets[0])
    )


def _reorder_delay(packet: Packet) -> int:
    if packet.pts_s is None or packet.dts_s is None or packet.duration_s <= 0:
        return 0
    return max(round((packet.pts_s - packet.dts_s) / packet.duration_s), 0)


def _first_sps(annex_b: bytes) -> bytes | None:
    """The first sequence parameter set NAL unit (header byte included) in an Annex B stream."""
    for nal in re.split(b"\x00\x00\x01", annex_b):
        nal = nal.rstrip(b"\x00")
        if len(nal) >= 4 and nal[0] & 0x1F == _NAL_SPS:
            return nal
    return None


def x264_matching(stream: H264Stream) -> list[str]:
    """libx264 settings whose output can sit between copied pieces of `stream`."""
    args = ["-c:v", "libx264", "-preset", X264_PIECE_PRESET, "-crf", str(X264_PIECE_CRF)]
    if stream.x264_profile is not None:
        args += ["-profile:v", stream.x264_profile]
    if stream.level is not None:
        args += ["-level:v", stream.level]
    # stitchable: headers that do not depend on the content, alike in head and tail
    params = "stitchable=1"
    if stream.reorder_delay_frames == 0 or stream.x264_profile == "baseline":
        args += ["-bf", "0"]
    elif stream.reorder_delay_frames == 1:
        args += ["-bf", "1"]
        params += ":b-pyramid=none"
    return [*args, "-x264-params", params]


@dataclass(frozen=True)
class SmartPlan:
    """The pieces of a smart cut: re-encoded head and tail (maybe none), copied middle."""

    head: tuple[float, float] | None
    middle: tuple[float, float]
    tail: tuple[float, float] | None


def plan_smart(
    start_s: float, end_s: float, keyframes: Sequence[float], frame_s: float
) -> SmartPlan | None:
    """Split [start, end) at its first and last clean keyframe; None if no group fits."""
    tolerance = frame_s / 4
    inside = sorted(k for k in keyframes if start_s - tolerance <= k <= end_s + tolerance)
    if len(inside) < 2 or inside[-1] - inside[0] < frame_s / 2:
        return None
    first, last = inside[0], inside[-1]
    head = (start_s, first) if first - start_s > tolerance else None
    tail = (last, end_s) if end_s - last > tolerance else None
    return SmartPlan(head=head, middle=(first, last), tail=tail)


def copy_packets_args(
    source: str | Path, start: float, end: float, frame_s: float, piece: Path
) -> list[str]:
    """ffmpeg arguments stream-copying the video packets shown in [start, end) to MPEG-TS.

    Both ends must be clean keyframes. The packets are picked by presentation time with the
    `noise` bitstream filter: a seek can land on an earlier keyframe (a Matroska index may
    list few), and -t cuts on decoding times, which keeps a frame or two of the next group.
    """
    seek = start + frame_s / 4
    first, stop = start - seek - frame_s / 4, end - seek - frame_s / 4
    keep = f"noise=drop=lt(pts*tb\\,{first:.6f})+gte(pts*tb\\,{stop:.6f})"
    args = ["-ss", f"{seek:.6f}", "-t", f"{end - seek + 1.0:.6f}", "-i", str(source)]
    args += ["-map", "0:v:0", "-c", "copy", "-bsf:v", keep, "-an", "-sn", "-dn"]
    return [*args, "-f", "mpegts", str(piece)]


def ffconcat_listing(pieces: Sequence[tuple[str, float, float]]) -> str:
    """A concat-demuxer script joining (file name, start, end) pieces on exact durations."""
    lines = ["ffconcat version 1.0"]
    for name, start, end in pieces:
        quoted = name.replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {end - start:.6f}"]
    return "\n".join(lines) + "\n"
