"""A zip archive written while it is sent: no temporary file, memory bounded by one chunk.

`zipfile` writes to any object with `write`; given one that cannot seek it puts each
member's sizes and CRC after its data (a data descriptor) and the central directory at the
end, which every unzip tool reads. Media is stored as it is (already compressed); text is
deflated. Members are ZIP64-capable, so a job's multi-gigabyte video fits.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_DEFLATE_SUFFIXES = {".json", ".srt", ".vtt", ".txt", ".wav", ".csv", ".log"}


@dataclass(frozen=True)
class ZipMember:
    arcname: str
    chunks: Callable[[], Iterable[bytes]] | None = None  # the member's bytes, streamed, or
    data: bytes | None = None  # bytes to write (a manifest)


class _Sink(io.RawIOBase):
    """A write-only, unseekable buffer the generator empties after each write."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _compression(arcname: str) -> int:
    deflate = Path(arcname).suffix.lower() in _DEFLATE_SUFFIXES
    return zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED


def iter_zip(members: Iterable[ZipMember]) -> Iterator[bytes]:
    """Yield the bytes of a zip archive of `members`, one chunk at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for member in members:
            info = zipfile.ZipInfo(member.arcname, date_time=time.localtime()[:6])
            info.external_attr = 0o644 << 16
            info.compress_type = _compression(member.arcname)
            with archive.open(info, "w", force_zip64=True) as dest:
                if member.data is not None:
                    dest.write(member.data)
                elif member.chunks is not None:
                    for block in member.chunks():
                        dest.write(block)
                        if out := sink.take():
                            yield out
            if out := sink.take():
                yield out
    if out := sink.take():
        yield out
