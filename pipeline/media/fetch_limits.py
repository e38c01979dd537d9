"""The download limits (MAX_DOWNLOAD_BYTES, MAX_MEDIA_DURATION_S) as the fetch stage
applies them to a download and to an upload alike, and the sizes its messages show."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PolicyError
from pipeline.options import FetchOptions

_MB = 1_000_000


def _unit(size_bytes: float) -> tuple[float, str]:
    return (_MB, "MB") if size_bytes >= _MB else (1000, "KB")


def size_text(size_bytes: float) -> str:
    """1234567 -> "1.2 MB", 47119 -> "47.1 KB"."""
    scale, unit = _unit(size_bytes)
    return f"{size_bytes / scale:.1f} {unit}"


def sizes_text(done_bytes: float, total_bytes: float) -> str:
    """(1200000, 3400000) -> "1.2/3.4 MB", in the unit of the total."""
    scale, unit = _unit(total_bytes)
    return f"{done_bytes / scale:.1f}/{total_bytes / scale:.1f} {unit}"


def seconds_text(duration_s: float) -> str:
    return f"{duration_s:.1f} s" if duration_s < 10 else f"{duration_s:.0f} s"


def too_large(size_bytes: float | None, limit_bytes: int) -> PolicyError:
    size = f" ({size_text(size_bytes)})" if size_bytes else ""
    return PolicyError(
        f"The media is larger than the {size_text(limit_bytes)} download limit{size}",
        code="too_large",
    )


def too_long(duration_s: float, limit_s: float) -> PolicyError:
    return PolicyError(
        f"The media lasts {seconds_text(duration_s)}, longer than the "
        f"{seconds_text(limit_s)} limit",
        code="too_long",
    )


def within_size(path: Path, options: FetchOptions) -> int:
    """The file's size, or `too_large` past MAX_DOWNLOAD_BYTES."""
    size_bytes = path.stat().st_size
    limit = options.max_download_bytes
    if limit is not None and size_bytes > limit:
        raise too_large(size_bytes, limit)
    return size_bytes


def within_duration(duration_s: float | None, options: FetchOptions) -> float | None:
    """The duration, or `too_long` past MAX_MEDIA_DURATION_S."""
    limit = options.max_media_duration_s
    if limit is not None and duration_s is not None and duration_s > limit:
        raise too_long(duration_s, limit)
    return duration_s
