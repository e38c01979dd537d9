"""The artifact store contract, on both backends: a local directory and S3 (a real
SeaweedFS server on loopback, from the `s3_server` fixture)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.artifacts import ArtifactPathError, ArtifactStore, job_key, job_prefix
from storage.stores import StorageConfig, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        url = (tmp_path / "artifacts").as_uri()
        return open_store(StorageConfig(artifact_url=url, scratch_dir=str(tmp_path)))
    s3: Any = request.getfixturevalue("s3_server")
    config = StorageConfig(
        artifact_url=s3.artifact_url(f"t-{uuid.uuid4().hex[:10]}"),
        scratch_dir=str(tmp_path / "scratch"),
        s3_endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        aws_region=s3.region,
    )
    return open_store(config)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "scratch-files" / uuid.uuid4().hex / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def _sha(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def test_put_get_size_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(70_000)
    key = job_key(uuid.uuid4(), "audio.wav")
    assert store.size(key) is None and not store.exists(key)
    assert store.put_file(_file(tmp_path, "audio.wav", data), key) == len(data)
    assert store.size(key) == len(data) and store.exists(key)
    out = store.get_file(key, tmp_path / "back" / "audio.wav")
    assert out.read_bytes() == data
    assert b"".join(store.iter_bytes(key)) == data
    staged = store.stage_in(key, tmp_path / "work" / "audio.wav")
    assert staged.read_bytes() == data


def test_put_replaces_an_object(store: ArtifactStore, tmp_path: Path) -> None:
    key = job_key(uuid.uuid4(), "transcript.json")
    store.put_file(_file(tmp_path, "t.json", b"first version"), key)
    store.put_file(_file(tmp_path, "t.json", b"second"), key)
    assert b"".join(store.iter_bytes(key)) == b"second"
    assert store.size(key) == 6


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, None, slice(0, None)), (10, 20, slice(10, 20)), (99_990, None, slice(99_990, None)),
     (0, 1, slice(0, 1)), (50, 50, slice(50, 50)), (99_999, 200_000, slice(99_999, None))],
)  # fmt: skip
def test_ranges(
    store: ArtifactStore, tmp_path: Path, start: int, end: int | None, expected: slice
) -> None:
    data = os.urandom(100_000)
    key = job_key(uuid.uuid4(), "clip.mp4")
    store.put_file(_file(tmp_path, "clip.mp4", data), key)
    assert b"".join(store.iter_bytes(key, start, end)) == data[expected]


def test_large_object_streams_in_chunks(store: ArtifactStore, tmp_path: Path) -> None:
    # Larger than one multipart part (8 MiB), read back in 256 KiB chunks: never whole.
    data = os.urandom(20 << 20)
    key = job_key(uuid.uuid4(), "source.mp4")
    store.put_file(_file(tmp_path, "source.mp4", data), key)
    assert store.size(key) == len(data)
    sizes: list[int] = []

    def chunks() -> Iterator[bytes]:
        for chunk in store.iter_bytes(key, chunk_bytes=256 << 10):
            sizes.append(len(chunk))
            yield chunk

    assert _sha(chunks()) == hashlib.sha256(data).hexdigest()
    assert len(sizes) > 20 and max(sizes) <= 2 << 20
    back = store.get_file(key, tmp_path / "back.mp4")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_missing_objects(store: ArtifactStore, tmp_path: Path) -> None:
    key = job_key(uuid.uuid4(), "nothing.wav")
    assert store.size(key) is None
    with pytest.raises(FileNotFoundError):
        store.get_file(key, tmp_path / "x.wav")
    with pytest.raises(FileNotFoundError):
        b"".join(store.iter_bytes(key))
    with pytest.raises(FileNotFoundError):
        store.stage_in(key, tmp_path / "w" / "x.wav")
    assert not (tmp_path / "x.wav").exists()
    store.delete_keys([key])  # missing: no error


def test_list_and_delete_stay_inside_a_job(store: ArtifactStore, tmp_path: Path) -> None:
    doomed, kept = uuid.uuid4(), uuid.uuid4()
    for job, name in [(doomed, "a.wav"), (doomed, "clip_01.mp4"), (kept, "b.wav")]:
        store.put_file(_file(tmp_path, name, name.encode()), job_key(job, name))
    assert store.list_keys(job_prefix(doomed)) == sorted(
        [job_key(doomed, "a.wav"), job_key(doomed, "clip_01.mp4")]
    )
    store.delete_keys([job_key(doomed, "a.wav")])
    assert store.list_keys(job_prefix(doomed)) == [job_key(doomed, "clip_01.mp4")]
    assert store.delete_job(doomed) == 1
    assert store.list_keys(job_prefix(doomed)) == []
    assert store.list_keys(job_prefix(kept)) == [job_key(kept, "b.wav")]
    assert store.delete_job(doomed) == 0  # already gone: no error


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b"])
def test_bad_keys_are_refused_by_every_backend(
    store: ArtifactStore, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ArtifactPathError):
        store.put_file(_file(tmp_path, "f", b"x"), key)
    with pytest.raises(ArtifactPathError):
        store.iter_bytes(key)
