"""Cut a frame-accurate clip out of a video, re-encoding as little of it as possible.

Three ways to cut [start, end), after snapping both to frame boundaries:

* smart (H.264 into mp4 at the source's size, no captions burned): the source video is
  stream-copied between the first clean keyframe at or after the start and the last one at
  or before the end; only the partial groups of pictures at the head (start -> first
  keyframe) and the tail (last keyframe -> end) are re-encoded, with libx264 told to match
  the source's profile, level and B-frame delay. Each piece is written as MPEG-TS, which
  keeps every piece's SPS/PPS in-band, and the concat demuxer joins them on durations we
  give it; head and tail encode in two threads while the middle is copied. AAC audio is
  copied packet by packet over [start, end) in the same final pass (an AAC packet is ~21 ms,
  under a frame), other audio re-encoded. A 20-second clip re-encodes at most two
  keyframe intervals instead of 20 seconds.
* reencode: the whole clip through one filter graph (size, aspect ratio, captions);
  libx264 + AAC into mp4, or libvpx-vp9 + Opus into webm.
* copy: a plain keyframe stream copy (`-ss -c copy`). It starts at the keyframe before
  `start`, so it is not frame accurate; the benchmark uses it as the speed floor.

"auto" takes smart when the source and options allow it and the clip contains two clean
keyframes (at least one whole group to copy), reencode otherwise. A source turned by a
display matrix (phone video) is always re-encoded, upright: the pieces would lose it.

The mp4's avcC box holds the parameter sets of the first piece; a piece whose encoder
settings differ carries its own SPS/PPS in-band at its IDR. FFmpeg-based decoders (and so
Chrome and Firefox) follow those; a player that only reads avcC would not, which is the
price of not re-encoding the middle.

Frame accuracy: the video is decoded from a little before the start and a `trim` filter
keeps the frames in [start, end) (see `video_filters.frame_range_input`). Audio is read
from its own input at exactly [start, end).

Everything is written into a scratch directory next to `out_path`, removed in `finally`;
the finished clip is renamed into place, so a failure or a cancel leaves nothing behind.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.clips.cut_progress import CutProgress, EitherCancel
from pipeline.clips.frames import DEFAULT_FRAME_S, exact_fps, snap_to_frames
from pipeline.clips.keyframes import (
    H264Stream,
    SmartPlan,
    copy_packets_args,
    ffconcat_listing,
    h264_stream,
    keyframe_times,
    plan_smart,
    x264_matching,
)
from pipeline.clips.video_filters import (
    AspectMode,
    AspectRatio,
    Resolution,
    frame_range_input,
    output_size,
    video_encoder,
    video_filtergraph,
)
from pipeline.errors import MediaError, StageCancelled
from pipeline.media.ffmpeg import remove_quietly, run_ffmpeg
from pipeline.media.probe import MediaInfo, probe
from pipeline.types import CancelToken, ProgressCallback

__all__ = [
    "AspectRatio",
    "CutOptions",
    "CutResult",
    "Resolution",
    "cut_clip",
    "exact_fps",
    "keyframe_times",
    "output_size",
    "snap_to_frames",
]

OutputFormat = Literal["mp4", "webm"]
CutMethod = Literal["auto", "smart", "reencode", "copy"]

AUDIO_BITRATE_KBPS = 128
OPUS_BITRATE_KBPS = 96
# relative cost of one second of each kind of work, to spread progress over the pieces
_ENCODE_COST = 1.0
_COPY_COST = 0.03
_JOIN_COST = 0.1


@dataclass(frozen=True)
class CutOptions:
    output_format: OutputFormat = "mp4"
    resolution: Resolution = "source"
    aspect_ratio: AspectRatio = "source"
    # centre crop, or the full frame on a blurred, scaled-up copy of itself
    aspect_mode: AspectMode = "crop"
    # an SRT whose times are relative to the clip start; burned into the picture when set
    subtitles_path: str | None = None
    # "copy" is a plain keyframe stream copy, NOT frame accurate (for the benchmark)
    method: CutMethod = "auto"


@dataclass(frozen=True)
class CutResult:
    path: str
    start_s: float  # the frame-snapped start actually cut
    end_s: float
    duration_s: float  # as probed from the output
    width: int
    height: int
    fps: float | None
    method: str  # "smart" | "reencode" | "copy"
    size_bytes: int


def _ts(seconds: float) -> str:
    return f"{max(seconds, 0.0):.6f}"


# ----------------------------------------------------------------------------- cut


def cut_clip(
    source: str | Path,
    start_s: float,
    end_s: float,
    out_path: str | Path,
    options: CutOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
    *,
    info: MediaInfo | None = None,
    keyframes: Sequence[float] | None = None,
) -> CutResult:
    """Cut [start_s, end_s) of `source` into `out_path` (see the module docstring).

    `info` and `keyframes` (from `probe` and `keyframe_times`) save reading the source again
    for each clip. Raises MediaError (bad range, no video, unreadable source, ffmpeg failure)
    or StageCancelled; on any failure nothing is left at `out_path` or beside it.
    """
    source, out_path = Path(source), Path(out_path)
    if cancel.cancelled:
        raise StageCancelled("Cancelled before the clip was cut")
    info = info if info is not None else probe(source)
    _check(start_s, end_s, info, source, options)
    start, end = snap_to_frames(start_s, end_s, info.fps, info.duration_s)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
    try:
        cut = _Cut(source, start, end, options, info, scratch, progress, cancel)
        method = cut.run(keyframes)
        cut.output.replace(out_path)
        return _result(out_path, start, end, method)
    except BaseException:
        remove_quietly(out_path)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check(
    start_s: float, end_s: float, info: MediaInfo, source: Path, options: CutOptions
) -> None:
    if options.subtitles_path is not None and not Path(options.subtitles_path).is_file():
        raise MediaError(
            f"The captions file {Path(options.subtitles_path).name} does not exist",
            code="file_missing",
        )
    if not info.has_video:
        raise MediaError(
            f"{source.name} has no video track; clips need one (audio-only source)",
            code="no_video_stream",
        )
    if not info.width or not info.height:
        raise MediaError(f"The frame size of {source.name} is unknown", code="corrupt_media")
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s >= end_s:
        raise MediaError(
            f"The clip range is empty: start {start_s:g} s is not before end {end_s:g} s",
            code="invalid_clip_range",
        )
    if info.duration_s is not None and start_s >= info.duration_s:
        raise MediaError(
            f"The clip starts at {start_s:g} s, past the end of the video "
            f"({info.duration_s:.2f} s)",
            code="invalid_clip_range",
        )


def _result(path: Path, start: float, end: float, method: str) -> CutResult:
    out = probe(path)
    return CutResult(
        path=str(path),
        start_s=start,
        end_s=end,
        duration_s=out.duration_s if out.duration_s is not None else end - start,
        width=out.width or 0,
        height=out.height or 0,
        fps=out.fps,
        method=method,
        size_bytes=path.stat().st_size,
    )


def smart_blocker(info: MediaInfo, options: CutOptions, size: tuple[int, int]) -> str | None:
    """Why a smart cut cannot give this clip (None when it can)."""
    if info.video_codec != "h264":
        return f"the source video is {info.video_codec}, not h264"
    if options.output_format != "mp4":
        return f"{options.output_format} output is always re-encoded"
    if size != (info.width, info.height):
        return f"the clip is {size[0]}x{size[1]}, the source {info.width}x{info.height}"
    if options.subtitles_path is not None:
        return "captions are burned into the picture"
    if exact_fps(info.fps) is None:
        return "the source frame rate is unknown"
    if info.rotation:
        return f"the source is turned {info.rotation} degrees on display (pieces would lose it)"
    return None


@dataclass
class _Cut:
    """One cut: the ffmpeg runs of its method, all writing into the scratch directory."""

    source: Path
    start: float
    end: float
    options: CutOptions
    info: MediaInfo
    scratch: Path
    progress: ProgressCallback
    cancel: CancelToken

    def __post_init__(self) -> None:
        width, height = self.info.width or 0, self.info.height or 0  # checked by _check
        self.frame_s = 1 / (exact_fps(self.info.fps) or 1 / DEFAULT_FRAME_S)
        # ffmpeg decodes turned sources upright: size everything on the upright picture
        self.upright = (height, width) if self.info.rotation % 180 == 90 else (width, height)
        self.size = output_size(*self.upright, self.options.resolution, self.options.aspect_ratio)
        self.output = self.scratch / f"clip.{self.options.output_format}"

    def run(self, keyframes: Sequence[float] | None) -> str:
        """Cut with the method the options ask for (auto: smart when it can); say which."""
        method = self.options.method
        if method in ("copy", "reencode"):
            (self.copy if method == "copy" else self.reencode)()
            return method
        blocker = smart_blocker(self.info, self.options, self.size)
        if blocker is not None and method == "smart":
            raise ValueError(f"method='smart' cannot cut this clip: {blocker}")
        stream = self._h264_stream() if blocker is None else None
        if stream is not None and stream.x264_profile is not None:
            if keyframes is None:
                keyframes = keyframe_times(self.source, self.cancel)
            plan = plan_smart(self.start, self.end, keyframes, self.frame_s)
            if plan is not None:
                self.smart(plan, stream)
                return "smart"
        self.reencode()  # an odd stream, or no whole group of pictures in a short clip
        return "reencode"

    def _h264_stream(self) -> H264Stream | None:
        try:
            return h264_stream(self.source, self.cancel)
        except MediaError:
            return None

    def _ffmpeg(self, args: list[str], duration_s: float, report: ProgressCallback) -> None:
        if self.cancel.cancelled:
            raise StageCancelled("Cancelled while cutting the clip")
        run_ffmpeg(args, expected_duration_s=duration_s, progress=report, cancel=self.cancel)

    # --- inputs and outputs

    def audio_input(self) -> list[str]:
        if not self.info.has_audio:
            return []
        length = self.end - self.start
        return ["-ss", _ts(self.start), "-t", _ts(length), "-i", str(self.source)]

    def audio_output(self, copy_aac: bool = False) -> list[str]:
        """Opus for webm, AAC for mp4. `copy_aac`: an AAC source is copied packet by packet
        (every AAC packet is a keyframe of ~21 ms, so the cut stays within half a packet of
        the asked times: under a frame) instead of re-encoded, the biggest fixed cost of a
        smart cut after the pieces themselves."""
        if not self.info.has_audio:
            return []
        if copy_aac and self.info.audio_codec == "aac" and self.options.output_format == "mp4":
            return ["-map", "1:a:0", "-c:a", "copy"]
        if self.options.output_format == "webm":
            return ["-map", "1:a:0", "-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k"]
        return ["-map", "1:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k"]

    def container(self) -> list[str]:
        common = ["-sn", "-dn", "-map_metadata", "-1", "-f", self.options.output_format]
        if self.options.output_format == "mp4":
            common = ["-movflags", "+faststart", *common]
        return [*common, str(self.output)]

    # --- the three methods

    def copy(self) -> None:
        length = self.end - self.start
        args = ["-ss", _ts(self.start), "-t", _ts(length), "-i", str(self.source)]
        args += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"]
        args += ["-avoid_negative_ts", "make_zero", *self.container()]
        self._ffmpeg(args, length, CutProgress(self.progress, [1.0]).step("copying"))

    def reencode(self) -> None:
        video, trim = frame_range_input(self.source, self.start, self.end, self.frame_s)
        graph = video_filtergraph(
            *self.upright,
            self.size,
            self.options.aspect_mode,
            self.options.subtitles_path,
            input_label="cut",
        )
        args = [*video, *self.audio_input(), "-filter_complex", f"[0:v:0]{trim}[cut];{graph}"]
        args += ["-map", "[v]", "-fps_mode", "passthrough"]
        args += [
            *video_encoder(self.options.output_format),
            *self.audio_output(),
            *self.container(),
        ]
        length = self.end - self.start
        self._ffmpeg(args, length, CutProgress(self.progress, [1.0]).step("re-encoding"))

    def smart(self, plan: SmartPlan, stream: H264Stream) -> None:
        """Head and tail are encoded in two threads while this one copies the middle."""
        ends = {name: piece for name, piece in (("head", plan.head), ("tail", plan.tail))}
        encoded = {name: piece for name, piece in ends.items() if piece is not None}
        costs = [(b - a) * _ENCODE_COST for a, b in encoded.values()]
        costs += [(plan.middle[1] - plan.middle[0]) * _COPY_COST]
        tracker = CutProgress(self.progress, [*costs, (self.end - self.start) * _JOIN_COST])
        steps = {name: tracker.step(f"re-encoding the {name}") for name in encoded}
        stop = EitherCancel(self.cancel)  # one failing piece stops the other
        pieces: dict[str, tuple[str, float, float]] = {}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="smart-cut") as pool:
            futures = {
                name: pool.submit(self.encode_piece, name, *piece, stream, steps[name], stop)
                for name, piece in encoded.items()
            }
            try:
                pieces["middle"] = self.copy_middle(*plan.middle, tracker)
                for name, future in futures.items():
                    pieces[name] = future.result()
            except BaseException:
                stop.cancel()
                raise
        order = [name for name in ("head", "middle", "tail") if name in pieces]
        self.join([pieces[name] for name in order], tracker)

    def encode_piece(
        self,
        name: str,
        start: float,
        end: float,
        stream: H264Stream,
        report: ProgressCallback,
        cancel: CancelToken,
    ) -> tuple[str, float, float]:
        piece = self.scratch / f"{name}.ts"
        at_keyframe = name == "tail"  # a tail starts on a clean keyframe
        video, trim = frame_range_input(
            self.source, start, end, self.frame_s, at_keyframe=at_keyframe
        )
        args = [*video, "-map", "0:v:0", "-vf", trim, "-an", "-sn", "-dn"]
        args += ["-fps_mode", "passthrough", *x264_matching(stream), "-f", "mpegts", str(piece)]
        run_ffmpeg(args, expected_duration_s=end - start, progress=report, cancel=cancel)
        return piece.name, start, end

    def copy_middle(
        self, start: float, end: float, tracker: CutProgress
    ) -> tuple[str, float, float]:
        piece = self.scratch / "middle.ts"
        args = copy_packets_args(self.source, start, end, self.frame_s, piece)
        self._ffmpeg(args, end - start, tracker.step("copying"))
        return piece.name, start, end

    def join(self, pieces: list[tuple[str, float, float]], tracker: CutProgress) -> None:
        """Concatenate the pieces (durations given, not guessed) and add the audio."""
        listing = self.scratch / "pieces.ffconcat"
        listing.write_text(ffconcat_listing(pieces), encoding="utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", str(listing), *self.audio_input()]
        args += ["-map", "0:v:0", "-c:v", "copy", *self.audio_output(copy_aac=True)]
        args += self.container()
        self._ffmpeg(args, self.end - self.start, tracker.step("joining"))
