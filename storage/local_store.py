"""`LocalArtifactStore`: artifacts as files in a directory, `<root>/<job id>/<name>`.

The default backend (`ARTIFACT_DIR`), for one machine or for a directory every node of a
cluster mounts at the same path. A `put` is a rename when the scratch directory is on the
same filesystem, otherwise a copy to a hidden temporary name and then a rename, so a
reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from storage.artifacts import CHUNK_BYTES, ArtifactPathError, ArtifactStore, check_key


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).expanduser().resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        self.url = self._root.as_uri()

    @property
    def root(self) -> Path:
        return self._root

    def local_path(self, key: str) -> Path:
        check_key(key)
        # resolve() follows symlinks, so a link pointing outside the root is refused too.
        full = (self._root / key).resolve()
        if not full.is_relative_to(self._root) or full == self._root:
            raise ArtifactPathError(key)
        return full

    def put_file(self, local: Path, key: str) -> int:
        dest = self.local_path(key)
        size = local.stat().st_size
        if local.resolve() == dest:
            return size
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, dest)
        except OSError:  # another filesystem: copy beside the target, then rename
            part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
            try:
                shutil.copyfile(local, part)
                os.replace(part, dest)
            finally:
                part.unlink(missing_ok=True)
        return size

    def get_file(self, key: str, dest: Path) -> Path:
        source = self.local_path(key)
        if not source.is_file():
            raise FileNotFoundError(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def size(self, key: str) -> int | None:
        try:
            path = self.local_path(key)
            return path.stat().st_size if path.is_file() else None
        except (ArtifactPathError, OSError):
            return None

    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[bytes]:
        path = self.local_path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return _read_range(path, start, end, chunk_bytes)

    def list_keys(self, prefix: str) -> list[str]:
        base = self.local_path(check_key(prefix))
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self._root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".part")
        )

    def delete_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            with contextlib.suppress(ArtifactPathError):
                self.local_path(key).unlink(missing_ok=True)

    def delete_job(self, job_id: uuid.UUID | str) -> int:
        count = super().delete_job(job_id)
        shutil.rmtree(self._root / str(uuid.UUID(str(job_id))), ignore_errors=True)
        return count


def _read_range(path: Path, start: int, end: int | None, chunk_bytes: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = None if end is None else max(end - start, 0)
        while left is None or left > 0:
            block = f.read(chunk_bytes if left is None else min(chunk_bytes, left))
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block
