"""A JPEG still of one frame of a video, for the clip lists of the API.

One ffmpeg run: seek (decoding from the keyframe before, so the still is the frame at that
time, not the keyframe), one frame, scaled down to at most `max_width` (never up), encoded
with ffmpeg's mjpeg at -q:v 3 into full-range 4:2:0, which every JPEG decoder reads. The
time is clamped inside the video: a seek past the last frame would give ffmpeg nothing to
encode.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pipeline.errors import MediaError, StageCancelled
from pipeline.media.ffmpeg import remove_quietly, run_ffmpeg
from pipeline.media.probe import probe
from pipeline.types import CancelToken

JPEG_QUALITY = 3  # mjpeg -q:v, 2 (best) .. 31
END_MARGIN_S = 0.1  # keep the seek this far before the end (the last frame has a length)


def make_thumbnail(
    video: str | Path,
    out_path: str | Path,
    at_s: float,
    *,
    max_width: int = 640,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the frame of `video` shown at `at_s` (clamped inside it) to `out_path` as JPEG.

    Raises MediaError for a file without video or one ffmpeg cannot decode, StageCancelled
    on cancel; no partial file is left behind.
    """
    video, out_path = Path(video), Path(out_path)
    if max_width < 2:
        raise ValueError(f"max_width must be at least 2, not {max_width}")
    if cancel is not None and cancel.cancelled:
        raise StageCancelled("Cancelled before the thumbnail was made")
    info = probe(video)
    if not info.has_video:
        raise MediaError(f"{video.name} has no video track to take a thumbnail from")
    at = max(at_s, 0.0)
    if info.duration_s is not None:
        frame_s = 1 / info.fps if info.fps else END_MARGIN_S
        at = min(at, max(info.duration_s - max(2 * frame_s, END_MARGIN_S), 0.0))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}.part")
    scale = f"scale='min({max_width},iw)':-2:flags=bicubic:out_range=full,format=yuv420p"
    args = ["-ss", f"{at:.6f}", "-i", str(video), "-map", "0:v:0", "-frames:v", "1"]
    args += ["-vf", scale, "-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY)]
    args += ["-f", "image2", "-update", "1", str(partial)]
    try:
        run_ffmpeg(args, expected_duration_s=None, progress=None, cancel=cancel)
        if not partial.is_file() or partial.stat().st_size == 0:
            raise MediaError(f"No frame of {video.name} could be decoded at {at:.2f} s")
        partial.replace(out_path)
    except BaseException:
        remove_quietly(partial)
        raise
    return out_path
