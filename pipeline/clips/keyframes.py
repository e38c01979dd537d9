"""Where a video can be cut without re-encoding, and what its H.264 stream looks like.

A stream copy can only begin at a keyframe that starts a closed group of pictures: one
whose following pictures (in decoding order) never show before it. `keyframe_times` reads
every packet header of the video stream once with PyAV (demuxing only, no decoding, so a
10-minute 720p file takes a fraction of a second) and keeps the keyframes where a cut can
begin cleanly. For H.264 only packets holding an IDR picture count (as ffmpeg's
`filter_units=pass_types=5` would keep them): the keyframe flag also marks the I pictures
of open GOPs, and a decoder cannot start cleanly at one. For other codecs, a keyframe whose
group shows a picture before it is left out.

`plan_smart` splits a clip at its first and last such keyframe. `h264_stream` reads the
source's sequence parameter set (profile, level) and decoder delay, and `x264_matching`
turns them into libx264 settings, so the re-encoded head and tail look like the copied
middle to a decoder: same profile and level, same B-frame reordering delay. (A different
delay makes the decoding times of the joined pieces run backwards, and a decoder meeting
a new reorder depth mid-stream can repeat a frame.)
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pipeline.errors import MediaError, StageCancelled
from pipeline.media.probe import check_file, media_error, open_media
from pipeline.types import CancelToken

X264_PIECE_CRF = 18  # head and tail sit next to copied source frames: keep them close
X264_PIECE_PRESET = "superfast"  # a second or two of frames per end: speed over size
_NAL_IDR = 5
_NAL_SPS = 7
_START_CODE = b"\x00\x00\x01"
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
    """One video packet, times in seconds from the start of the file."""

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


def keyframe_times(source: str | Path, cancel: CancelToken | None = None) -> list[float]:
    """Presentation times (s, from the start of the file) where a stream copy can begin.

    For H.264 these are the IDR pictures: a keyframe flag also marks the I pictures of open
    GOPs, which a decoder cannot start from cleanly. Raises MediaError when the file cannot
    be read or has no video stream, StageCancelled when `cancel` is set meanwhile.
    """
    with _opened(Path(source)) as (container, stream):
        only_idr = _codec(stream) == "h264"
        return clean_keyframes(_video_packets(container, stream, cancel, only_idr=only_idr))


@contextlib.contextmanager
def _opened(source: Path) -> Iterator[tuple[Any, Any]]:
    """The container of `source` and its first video stream, closed after; av errors
    become MediaError."""
    check_file(source)
    try:
        container = open_media(source)
    except av.error.FFmpegError as exc:
        raise media_error(source, exc, opening=True) from None
    with container:
        video = [s for s in container.streams.video if not _attached_pic(s)]
        if not video:
            raise MediaError(
                f"{source.name} has no video track; clips need one", code="no_video_stream"
            )
        try:
            yield container, video[0]
        except av.error.FFmpegError as exc:
            raise media_error(source, exc) from None


def _codec(stream: Any) -> str | None:
    context = stream.codec_context  # None when this build cannot decode the codec
    return context.codec.canonical_name if context is not None else None


def _attached_pic(stream: Any) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _packets_from_first_keyframe(
    container: Any, stream: Any, cancel: CancelToken | None
) -> Iterator[Any]:
    """The stream's av packets from its first keyframe on, as `ffmpeg -c copy` passes them.

    A read error after that ends the list, as it ends a copy; `cancel` is looked at before
    each packet."""
    started = False
    packets = container.demux(stream)
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise StageCancelled("Cancelled while reading the video packets")
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.InvalidDataError:
                if not started:
                    raise
                return
            started = started or (packet.is_keyframe and packet.size > 0)
            if started and packet.size:  # an empty packet only flushes a decoder
                yield packet
    finally:
        packets.close()


def _video_packets(
    container: Any, stream: Any, cancel: CancelToken | None, *, only_idr: bool
) -> Iterator[Packet]:
    """Video packets with times in seconds, shifted by the file's start time as ffmpeg
    shifts them; with `only_idr`, only those that hold an IDR picture."""
    time_base: Fraction = stream.time_base
    shift = -_rescale(container.start_time or 0, time_base)
    length_size = _nal_length_size(stream.codec_context)
    for packet in _packets_from_first_keyframe(container, stream, cancel):
        if only_idr and _NAL_IDR not in _nal_types(packet, length_size):
            continue
        yield _packet(packet, shift, time_base)


def _packet(packet: Any, shift: int, time_base: Fraction) -> Packet:
    return Packet(
        dts_s=_seconds(packet.dts, shift, time_base),
        pts_s=_seconds(packet.pts, shift, time_base),
        duration_s=float((packet.duration or 0) * time_base),
        keyframe=packet.is_keyframe and not packet.is_discard,
    )


def _rescale(microseconds: int, time_base: Fraction) -> int:
    """`av_rescale_q` from microseconds to `time_base` ticks (rounding half away from 0)."""
    ticks = Fraction(microseconds, 1_000_000) / time_base
    return int(math.copysign(math.floor(abs(ticks) + Fraction(1, 2)), ticks))


def _seconds(ticks: int | None, shift: int, time_base: Fraction) -> float | None:
    return None if ticks is None else float((ticks + shift) * time_base)


def _nal_length_size(context: Any) -> int:
    """Bytes of each NAL unit's length prefix (avcC, as in MP4 and Matroska); 0 for Annex B
    start codes (MPEG-TS, raw H.264)."""
    extradata = (context.extradata if context is not None else None) or b""
    if len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 0x3) + 1
    return 0


def _nal_units(data: Any, length_size: int) -> Iterator[memoryview]:
    """The NAL units of a packet (or of Annex B extradata), header byte first."""
    view = memoryview(data).cast("B")
    if length_size:
        at = 0
        while at + length_size <= len(view):
            size = int.from_bytes(view[at : at + length_size], "big")
            at += length_size
            if size <= 0 or at + size > len(view):
                return
            yield view[at : at + size]
            at += size
        return
    raw = bytes(view)
    at = raw.find(_START_CODE)
    while at >= 0:
        begin = at + len(_START_CODE)
        at = raw.find(_START_CODE, begin)
        nal = raw[begin : at if at >= 0 else len(raw)].rstrip(b"\x00")
        if nal:
            yield memoryview(nal)


def _nal_types(data: Any, length_size: int) -> set[int]:
    return {nal[0] & 0x1F for nal in _nal_units(data, length_size)}


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
    check_file(Path(source))
    key = _file_key(source)
    if key not in _stream_cache:
        _remember(_stream_cache, key, _read_h264_stream(Path(source), cancel))
    return _stream_cache[key]


def _read_h264_stream(source: Path, cancel: CancelToken | None) -> H264Stream:
    """The SPS from the codec parameters (avcC or Annex B extradata), else from the first
    keyframe packet; the reorder delay from that packet's timestamps."""
    with _opened(source) as (container, stream):
        context = stream.codec_context
        if _codec(stream) != "h264":
            raise MediaError(
                f"The video of {source.name} is {_codec(stream)}, not H.264",
                code="corrupt_media",
            )
        first = next(_packets_from_first_keyframe(container, stream, cancel), None)
        sps = _extradata_sps(context.extradata or b"")
        if sps is None and first is not None:
            sps = _first_sps(first, _nal_length_size(context))
        packet = None if first is None else _packet(first, 0, stream.time_base)
        delay = _reorder_delay(packet, context.reorder_depth) if packet else 0
    if sps is None or packet is None:
        raise MediaError("The H.264 stream has no sequence parameter set", code="corrupt_media")
    return H264Stream(profile_idc=sps[1], level_idc=sps[3], reorder_delay_frames=delay)


def _reorder_delay(packet: Packet, decoder_delay: int) -> int:
    """Frames between the packet's decoding and presentation times. Matroska stores no
    decoding times: then the decoder's reordering delay (ffmpeg starts the decoding times
    that many frames early, so a copy gives the same)."""
    if packet.pts_s is None or packet.duration_s <= 0:
        return 0
    if packet.dts_s is None:
        return max(decoder_delay, 0)
    return max(round((packet.pts_s - packet.dts_s) / packet.duration_s), 0)


def _extradata_sps(extradata: bytes) -> bytes | None:
    """The first SPS in the codec's extradata: an avcC record (version byte 1, then a count
    of SPS each after a 2-byte length) or Annex B NAL units."""
    if len(extradata) >= 8 and extradata[0] == 1:
        if extradata[5] & 0x1F == 0:
            return None
        size = int.from_bytes(extradata[6:8], "big")
        sps = extradata[8 : 8 + size]
        return sps if len(sps) == size and _is_sps(sps) else None
    return _first_sps(extradata, 0)


def _first_sps(data: Any, length_size: int) -> bytes | None:
    """The first sequence parameter set NAL unit (header byte included) in `data`."""
    for nal in _nal_units(data, length_size):
        if _is_sps(nal):
            return bytes(nal)
    return None


def _is_sps(nal: Any) -> bool:
    return len(nal) >= 4 and nal[0] & 0x1F == _NAL_SPS


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
