"""Serving one stored object over HTTP, with single-range `Range` requests (RFC 9110).

The same code serves both store backends: the bytes stream from the store in chunks
(`ArtifactStore.iter_bytes`), so a multi-gigabyte video never sits in memory. A header with
several ranges, or one this parser does not understand, gets the whole object (200), which
RFC 9110 allows; a range that starts past the end gets 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse

from storage.artifacts import ArtifactStore

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) range a `Range` header asks of an object of `size` bytes; None for
    the whole object; `RangeNotSatisfiable` for a range that starts past the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # several ranges or another unit: serve the whole object
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-N: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable
        return max(size - n, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # an invalid range is ignored
    if start >= size:
        raise RangeNotSatisfiable
    return start, end


def content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    if ascii_name == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=utf-8''{quote(filename)}"


def object_response(
    store: ArtifactStore,
    key: str,
    size: int,
    filename: str,
    content_type: str,
    range_header: str | None,
) -> Response:
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": content_disposition(filename)}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted if wanted is not None else (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    body = store.iter_bytes(key, start, end) if end > start else iter(())
    return StreamingResponse(body, status_code=status, media_type=content_type, headers=headers)
