"""The picture side of a re-encoded clip: output size, aspect ratio, burned-in captions.

`frame_range_input` picks the frames of a cut: ffmpeg input options that decode from a
little before it, and a `trim` filter that keeps the frames in [start, end) by their
times, moved back a quarter frame so that float rounding can neither drop nor add one.

`output_size` decides the frame size: the height named by the resolution, never above what
the source can give without upscaling, with the requested aspect ratio, in even numbers
(4:2:0 video needs them). `video_filtergraph` builds the ffmpeg filter graph that gets
there: a centre crop then a scale ("crop"), or the whole frame scaled to fit on top of a
blurred copy of itself scaled to fill ("blur"; the copy is blurred at a quarter of the size,
which looks the same and costs a sixteenth). Captions go on last, at the final size, so
their size does not depend on the source's.

A file name inside a filter graph goes through two rounds of ffmpeg's unescaping (the
filter's options, then the graph), so `filter_value` escapes for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

Resolution = Literal["360p", "480p", "720p", "1080p", "source"]
AspectRatio = Literal["source", "16:9", "9:16", "1:1"]
AspectMode = Literal["crop", "blur"]

RESOLUTION_HEIGHTS: dict[str, int] = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080}
ASPECT_RATIOS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
X264_CRF = 21
VP9_CRF = 33
PREROLL_S = 0.5  # decode from this much before a cut (see frame_range_input)
BLUR_SCALE_DOWN = 4
BLUR_SIGMA = 8
# libass sizes are in units of a 288-line script whatever the frame size (SRT has no
# PlayRes), so one style reads the same at 360p and 1080p.
CAPTION_STYLE = (
    "FontName=DejaVu Sans,FontSize=18,PrimaryColour=&H00FFFFFF,OutlineColour=&H00000000,"
    "BorderStyle=1,Outline=1.5,Shadow=0,MarginV=18,Alignment=2"
)


def _even_floor(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_round(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _ratio(src_w: int, src_h: int, aspect_ratio: AspectRatio) -> float:
    if aspect_ratio == "source":
        return src_w / src_h
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(
            f"unknown aspect ratio {aspect_ratio!r}; use one of {get_args(AspectRatio)}"
        )
    w, h = ASPECT_RATIOS[aspect_ratio]
    return w / h


def output_size(
    src_w: int, src_h: int, resolution: Resolution, aspect_ratio: AspectRatio
) -> tuple[int, int]:
    """(width, height) of a clip: the resolution's height, capped so nothing is upscaled.

    The cap is the height of the largest centred crop of the source with the target aspect
    ratio (for "source", the source height), so a 9:16 clip of a 1280x720 video is 404x720
    whatever the resolution asked for. Both sides are even.
    """
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"invalid source size {src_w}x{src_h}")
    if resolution != "source" and resolution not in RESOLUTION_HEIGHTS:
        raise ValueError(f"unknown resolution {resolution!r}; use one of {get_args(Resolution)}")
    ratio = _ratio(src_w, src_h, aspect_ratio)
    max_height = min(float(src_h), src_w / ratio)
    wanted = RESOLUTION_HEIGHTS.get(resolution, src_h)
    height = _even_floor(min(wanted, max_height) + 1e-6)
    width = _even_round(height * ratio)
    if width > src_w and aspect_ratio != "source":
        width = _even_floor(src_w)
    return width, height


def crop_box(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """Size of the largest centred region of the source with the aspect ratio width:height."""
    if src_w * height > src_h * width:  # the source is wider: keep its height
        return _even_round(src_h * width / height), src_h - src_h % 2
    return src_w - src_w % 2, _even_round(src_w * height / width)


def fit_box(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """Size of the whole source scaled to fit inside width x height."""
    scale = min(width / src_w, height / src_h)
    return min(_even_round(src_w * scale), width), min(_even_round(src_h * scale), height)


def filter_value(value: str) -> str:
    """Escape a filter option value for both unescaping rounds of a filter graph."""
    option_level = "".join("\\" + c if c in "\\':" else c for c in value)
    return "".join("\\" + c if c in "\\'[],;" else c for c in option_level)


def subtitles_filter(srt_path: str) -> str:
    """The `subtitles` filter burning `srt_path` in with a readable outline style."""
    return f"subtitles=filename={filter_value(srt_path)}:force_style={filter_value(CAPTION_STYLE)}"


def video_encoder(output_format: str) -> list[str]:
    """Encoder options of a re-encoded clip: x264 for mp4; VP9 fast enough for 2 cores."""
    if output_format == "webm":
        vp9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]
        return [*vp9, "-crf", str(VP9_CRF), "-b:v", "0"]
    return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(X264_CRF)]


def video_filtergraph(
    src_w: int,
    src_h: int,
    size: tuple[int, int],
    aspect_mode: AspectMode,
    subtitles_path: str | None,
    *,
    input_label: str = "0:v:0",
    output_label: str = "v",
) -> str:
    """A -filter_complex graph from the source video to a `size` frame, captions burned in."""
    width, height = size
    same_shape = src_w * height == src_h * width
    if aspect_mode == "blur" and not same_shape:
        chain = _blur_pad(src_w, src_h, width, height, input_label)
    else:
        crop_w, crop_h = crop_box(src_w, src_h, width, height)
        crop = "" if same_shape else f"crop={crop_w}:{crop_h},"
        chain = f"[{input_label}]{crop}scale={width}:{height}:flags=bicubic,setsar=1"
    if subtitles_path is not None:
        chain += "," + subtitles_filter(subtitles_path)
    return f"{chain},format=yuv420p[{output_label}]"


def _blur_pad(src_w: int, src_h: int, width: int, height: int, input_label: str) -> str:
    small_w = _even_round(width / BLUR_SCALE_DOWN)
    small_h = _even_round(height / BLUR_SCALE_DOWN)
    fg_w, fg_h = fit_box(src_w, src_h, width, height)
    return (
        f"[{input_label}]split=2[bg][fg];"
        f"[bg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,"
        f"crop={small_w}:{small_h},gblur=sigma={BLUR_SIGMA},"
        f"scale={width}:{height}:flags=bilinear,setsar=1[bgblur];"
        f"[fg]scale={fg_w}:{fg_h}:flags=bicubic,setsar=1[fgfit];"
        f"[bgblur][fgfit]overlay=x=(W-w)/2:y=(H-h)/2"
    )


def frame_range_input(
    source: str | Path, start: float, end: float, frame_s: float, *, at_keyframe: bool = False
) -> tuple[list[str], str]:
    """ffmpeg input options and a trim filter giving exactly the frames in [start, end).

    ffmpeg seeks on decoding times, so in an open-GOP source a seek to `start` can land on
    an I picture whose leading pictures (shown before it) cannot be decoded; they could be
    the first frames wanted. Seeking PREROLL_S early keeps them out of range. A range that
    starts `at_keyframe` (a clean one) is opened right there instead, with nothing decoded
    before it; the trim still drops what an imprecise index (Matroska) lands before it.
    """
    quarter = frame_s / 4
    if at_keyframe:
        seek = start + quarter
        args = ["-noaccurate_seek", "-ss", f"{seek:.6f}", "-i", str(source)]
    else:
        seek = max(start - PREROLL_S, 0.0)
        read = end - seek + 1.0  # a bound only: the trim picks the frames
        args = ["-ss", f"{seek:.6f}", "-t", f"{read:.6f}", "-i", str(source)]
    first, last = start - seek - quarter, end - seek - quarter
    return args, f"trim=start={first:.6f}:end={last:.6f},setpts=PTS-STARTPTS"
