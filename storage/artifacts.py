"""Where artifact bytes live: the `ArtifactStore` interface, store keys and content types.

A store holds objects under keys `<job id>/<file name>` (POSIX, relative). The database
keeps those keys (`Artifact.storage_path`), never a path on some machine, so the same rows
serve a local directory on one machine and S3-compatible object storage on a cluster.
Backends: `storage.local_store.LocalArtifactStore` and `storage.s3_store.S3ArtifactStore`;
`storage.stores.open_store` picks one from `ARTIFACT_URL`.

Work happens in a node's scratch directory; a finished file is `put` into the store in one
piece (a rename or a completed upload), so a reader never sees half an object.
"""

from __future__ import annotations

import mimetypes
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK_BYTES = 1 << 20

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
    """A store key that is not a clean relative path (it could leave the store)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"artifact key {key!r} is not a valid store key")


def check_key(key: str) -> str:
    """`key` if it is a relative POSIX path without `..`, `.`, backslashes or NUL."""
    if not key or "\x00" in key or "\\" in key:
        raise ArtifactPathError(key)
    if key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
        raise ArtifactPathError(key)
    return key


def job_prefix(job_id: uuid.UUID | str) -> str:
    """The key prefix of a job's objects (normalised through UUID: never a path)."""
    return str(uuid.UUID(str(job_id)))


def job_key(job_id: uuid.UUID | str, name: str) -> str:
    """The key of the file `name` of a job."""
    return check_key(f"{job_prefix(job_id)}/{name}")


class ArtifactStore(ABC):
    """Objects produced by jobs, by key. Implementations are safe to use from threads."""

    url: str
    # whether reads and writes cross a network (object storage) rather than the local disk
    remote: bool = False

    @abstractmethod
    def put_file(self, local: Path, key: str) -> int:
        """Store the file `local` under `key` (replacing what was there) and return its
        size. The file may be moved rather than copied: do not use `local` afterwards."""

    @abstractmethod
    def get_file(self, key: str, dest: Path) -> Path:
        """Copy the object to the local file `dest`; FileNotFoundError if it is missing."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes, None when it does not exist."""

    @abstractmethod
    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[bytes]:
        """The bytes [start, end) of the object (to its end when `end` is None), streamed
        in chunks of about `chunk_bytes`; FileNotFoundError if it is missing."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/` (recursive), sorted."""

    @abstractmethod
    def delete_keys(self, keys: Iterable[str]) -> None:
        """Delete these objects; missing ones are ignored."""

    def local_path(self, key: str) -> Path | None:
        """The object as a file on this machine, when the store is a local directory."""
        return None

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def stage_in(self, key: str, dest: Path) -> Path:
        """Make the object readable at `dest`: a symbolic link where the store is a local
        directory, a download otherwise. FileNotFoundError if it is missing."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        local = self.local_path(key)
        if local is not None:
            if not local.is_file():
                raise FileNotFoundError(key)
            dest.unlink(missing_ok=True)
            dest.symlink_to(local)
            return dest
        return self.get_file(key, dest)

    def delete_job(self, job_id: uuid.UUID | str) -> int:
        """Delete every object of a job; returns how many there were."""
        keys = self.list_keys(job_prefix(job_id))
        self.delete_keys(keys)
        return len(keys)
