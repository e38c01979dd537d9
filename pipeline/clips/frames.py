"""Clip times on a video's frame grid: frame k starts at k / fps."""

from __future__ import annotations

import math

DEFAULT_FRAME_S = 0.04  # one frame at 25 fps: the shortest clip when the rate is unknown
# ffmpeg prints NTSC rates rounded; the exact ones keep frame times on the grid for hours
_NTSC_RATES = {23.98: 24000 / 1001, 29.97: 30000 / 1001, 59.94: 60000 / 1001}


def exact_fps(fps: float | None) -> float | None:
    """The frame rate, with ffmpeg's rounded NTSC rates (29.97...) made exact."""
    if fps is None or fps <= 0:
        return None
    return _NTSC_RATES.get(round(fps, 2), fps)


def snap_to_frames(
    start_s: float, end_s: float, fps: float | None, duration_s: float | None
) -> tuple[float, float]:
    """Round start and end to the nearest frame boundary (k / fps), inside [0, duration].

    The end stays at least one frame after the start. Without a frame rate the times are
    only clamped (and kept DEFAULT_FRAME_S apart).
    """
    rate = exact_fps(fps)
    limit = duration_s if duration_s is not None and duration_s > 0 else math.inf
    if rate is None:
        start = min(max(start_s, 0.0), max(limit - DEFAULT_FRAME_S, 0.0))
        return start, max(min(end_s, limit), start + DEFAULT_FRAME_S)
    first = max(round(start_s * rate), 0)
    last = round(end_s * rate)
    if math.isfinite(limit):
        frames = max(math.floor(limit * rate + 1e-6), 1)
        first, last = min(first, frames - 1), min(last, frames)
    return first / rate, max(last, first + 1) / rate
