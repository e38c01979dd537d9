"""The streamed zip: a valid archive, bounded chunks, media stored and text deflated."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from deployments.zip_stream import ZipMember, iter_zip


def _chunks(path: Path, size: int = 64 * 1024) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        with path.open("rb") as f:
            while block := f.read(size):
                yield block

    return read


def test_streamed_zip_round_trips(tmp_path: Path) -> None:
    media = tmp_path / "clip_01.mp4"
    media.write_bytes(os.urandom(300_000))
    text = tmp_path / "transcript.srt"
    text.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n" * 500)
    members = [
        ZipMember("job.json", data=b'{"id": 1}'),
        ZipMember(media.name, chunks=_chunks(media)),
        ZipMember(text.name, chunks=_chunks(text)),
    ]
    chunks = list(iter_zip(members))
    assert len(chunks) > 3 and all(chunks)
    assert max(len(c) for c in chunks) < 200_000  # never the whole file at once
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["job.json", "clip_01.mp4", "transcript.srt"]
        assert archive.read("clip_01.mp4") == media.read_bytes()
        assert archive.read("transcript.srt") == text.read_bytes()
        infos = {i.filename: i for i in archive.infolist()}
        assert infos["clip_01.mp4"].compress_type == zipfile.ZIP_STORED
        assert infos["transcript.srt"].compress_type == zipfile.ZIP_DEFLATED
        assert infos["transcript.srt"].compress_size < infos["transcript.srt"].file_size // 5


def test_empty_file_and_no_members(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    data = b"".join(iter_zip([ZipMember("empty.txt", chunks=_chunks(empty))]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("empty.txt") == b""
    with zipfile.ZipFile(io.BytesIO(b"".join(iter_zip([])))) as archive:
        assert archive.namelist() == []
