"""LocalArtifactStore: per-job directories, relative storage paths, no escaping the root."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from storage.artifacts import (
    ArtifactPathError,
    ArtifactStore,
    LocalArtifactStore,
    content_type_for,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def test_is_an_artifact_store(store: LocalArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)
    as_protocol: ArtifactStore = store
    assert as_protocol.root.is_dir()


def test_job_dir_relative_resolve_round_trip(store: LocalArtifactStore) -> None:
    job_id = uuid.uuid4()
    job_dir = store.job_dir(job_id)
    assert job_dir.is_dir() and job_dir == store.root / str(job_id)
    clip = job_dir / "clips" / "clip_01.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x" * 123)

    storage_path = store.relative(clip)
    assert storage_path == f"{job_id}/clips/clip_01.mp4"
    assert store.resolve(storage_path) == clip
    assert store.size(clip) == 123
    assert store.size(storage_path) == 123
    assert store.relative(storage_path) == storage_path  # relative input is taken from the root


def test_root_is_created_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalArtifactStore("data/artifacts")
    assert store.root == tmp_path / "data" / "artifacts" and store.root.is_dir()


@pytest.mark.parametrize(
    "storage_path",
    [
        "",
        "../secret.txt",
        "job/../../secret.txt",
        "/etc/passwd",
        "..",
        ".",
        "job\\..\\..\\secret",
        "job/\x00.wav",
    ],
)
def test_resolve_refuses_escapes(store: LocalArtifactStore, storage_path: str) -> None:
    with pytest.raises(ArtifactPathError):
        store.resolve(storage_path)


def test_resolve_refuses_symlink_out_of_root(store: LocalArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    job_dir = store.job_dir(uuid.uuid4())
    os.symlink(outside, job_dir / "link.txt")
    with pytest.raises(ArtifactPathError):
        store.resolve(store.relative(job_dir) + "/link.txt")


def test_relative_refuses_paths_outside_root(store: LocalArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactPathError):
        store.relative(tmp_path / "elsewhere.wav")
    with pytest.raises(ArtifactPathError):
        store.relative(store.root)
    with pytest.raises(ArtifactPathError):
        store.size(tmp_path / "elsewhere.wav")


def test_delete_job_removes_only_that_job(store: LocalArtifactStore) -> None:
    doomed, kept = uuid.uuid4(), uuid.uuid4()
    (store.job_dir(doomed) / "a.wav").write_bytes(b"a")
    (store.job_dir(kept) / "b.wav").write_bytes(b"b")
    store.delete_job(doomed)
    assert not (store.root / str(doomed)).exists()
    assert (store.root / str(kept) / "b.wav").exists()
    store.delete_job(doomed)  # already gone: no error


def test_job_ids_cannot_carry_paths(store: LocalArtifactStore) -> None:
    with pytest.raises(ValueError):
        store.job_dir("../../etc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("flac", "audio/flac"),
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("json", "application/json"),
        ("srt", "application/x-subrip"),
        ("vtt", "text/vtt"),
        ("txt", "text/plain"),
        ("jpg", "image/jpeg"),
        ("zip", "application/zip"),
        (".MP3", "audio/mpeg"),
        ("clip_01.mp4", "video/mp4"),
        ("transcript.JSON", "application/json"),
        ("page.html", "text/html"),
        ("mystery", "application/octet-stream"),
    ],
)
def test_content_type_for(given: str, expected: str) -> None:
    assert content_type_for(given) == expected
