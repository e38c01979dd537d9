"""Where artifact bytes live. The database keeps paths relative to the store's root, so a
store can move (or be mounted elsewhere on another node) without rewriting rows."""

from __future__ import annotations

import mimetypes
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

_CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "txt": "text/plain",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "zip": "application/zip",
}


def content_type_for(fmt_or_filename: str) -> str:
    """MIME type for a format ("mp3"), extension (".mp3") or file name ("clip_01.mp4")."""
    name = fmt_or_filename.strip().lower()
    ext = name.rsplit(".", 1)[-1]
    if ext in _CONTENT_TYPES:
        return _CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type(name if "." in name else f"x.{name}")
    return guessed or "application/octet-stream"


class ArtifactPathError(ValueError):
    """A storage path that would leave the artifact root."""

    def __init__(self, path: str | Path, root: Path) -> None:
        self.path = str(path)
        self.root = root
        super().__init__(f"artifact path {self.path!r} is outside the artifact root")


@runtime_checkable
class ArtifactStore(Protocol):
    """Files produced by jobs, one directory per job."""

    @property
    def root(self) -> Path: ...

    def job_dir(self, job_id: uuid.UUID) -> Path:
        """The job's directory, created if missing."""
        ...

    def relative(self, path: str | Path) -> str:
        """The storage path (relative to the root, POSIX separators) of a file in the store."""
        ...

    def resolve(self, storage_path: str) -> Path:
        """The file a storage path names; refuses paths that escape the root."""
        ...

    def delete_job(self, job_id: uuid.UUID) -> None:
        """Remove the job's directory and everything in it."""
        ...

    def size(self, path: str | Path) -> int:
        """Size in bytes of a file in the store (absolute path or storage path)."""
        ...


class LocalArtifactStore:
    """An `ArtifactStore` on a local (or shared, mounted) directory."""

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).expanduser().resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def job_dir(self, job_id: uuid.UUID) -> Path:
        path = self._job_path(job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: str | Path) -> str:
        full = Path(path)
        if not full.is_absolute():
            full = self._root / full
        full = full.resolve()
        if not full.is_relative_to(self._root) or full == self._root:
            raise ArtifactPathError(path, self._root)
        return full.relative_to(self._root).as_posix()

    def resolve(self, storage_path: str) -> Path:
        if not storage_path or "\x00" in storage_path or "\\" in storage_path:
            raise ArtifactPathError(storage_path, self._root)
        parts = PurePosixPath(storage_path)
        if parts.is_absolute() or ".." in parts.parts:
            raise ArtifactPathError(storage_path, self._root)
        # resolve() follows symlinks, so a link pointing outside the root is refused too.
        full = (self._root / parts).resolve()
        if not full.is_relative_to(self._root) or full == self._root:
            raise ArtifactPathError(storage_path, self._root)
        return full

    def delete_job(self, job_id: uuid.UUID) -> None:
        shutil.rmtree(self._job_path(job_id), ignore_errors=True)

    def size(self, path: str | Path) -> int:
        return self.resolve(self.relative(path)).stat().st_size

    def _job_path(self, job_id: uuid.UUID | str) -> Path:
        # Normalising through UUID means a job id can never carry a path.
        return self._root / str(uuid.UUID(str(job_id)))
