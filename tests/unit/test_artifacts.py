"""Store keys, content types and what only the local directory store does (no escaping
its root, moves instead of copies). The contract both backends keep is tested in
test_artifact_stores.py."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from config.settings import Settings
from storage.artifacts import ArtifactPathError, check_key, content_type_for, job_key
from storage.local_store import LocalArtifactStore
from storage.stores import StorageConfig, StoreURLError, open_store, storage_config


def _settings(tmp: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, artifact_dir=str(tmp / "artifacts"), **overrides)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def test_root_is_created_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalArtifactStore("data/artifacts")
    assert store.root == tmp_path / "data" / "artifacts" and store.root.is_dir()
    assert store.url == store.root.as_uri()


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../secret.txt",
        "job/../../secret.txt",
        "/etc/passwd",
        "..",
        ".",
        "job//x.wav",
        "job/./x.wav",
        "job\\..\\..\\secret",
        "job/\x00.wav",
    ],
)
def test_bad_keys_are_refused(store: LocalArtifactStore, key: str) -> None:
    with pytest.raises(ArtifactPathError):
        check_key(key)
    with pytest.raises(ArtifactPathError):
        store.local_path(key)
    assert store.size(key) is None


def test_symlink_out_of_root_is_refused(store: LocalArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    job = uuid.uuid4()
    (store.root / str(job)).mkdir()
    os.symlink(outside, store.root / str(job) / "link.txt")
    with pytest.raises(ArtifactPathError):
        store.local_path(job_key(job, "link.txt"))


def test_job_ids_cannot_carry_paths() -> None:
    with pytest.raises(ValueError):
        job_key("../../etc", "passwd")


def test_put_moves_within_a_filesystem(store: LocalArtifactStore, tmp_path: Path) -> None:
    local = tmp_path / "scratch" / "audio.wav"
    local.parent.mkdir()
    local.write_bytes(b"abc")
    key = job_key(uuid.uuid4(), "audio.wav")
    assert store.put_file(local, key) == 3
    assert not local.exists()  # renamed, not copied
    assert store.local_path(key).read_bytes() == b"abc"


def test_stage_in_links_instead_of_copying(store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "src.mp4"
    src.write_bytes(b"video")
    key = job_key(uuid.uuid4(), "source.mp4")
    store.put_file(src, key)
    staged = store.stage_in(key, tmp_path / "work" / "source.mp4")
    assert staged.is_symlink() and staged.read_bytes() == b"video"


def test_storage_config_from_settings(tmp_path: Path) -> None:
    local = storage_config(_settings(tmp_path))
    assert local.backend == "local"
    assert local.artifact_url == (tmp_path / "artifacts").resolve().as_uri()
    assert isinstance(open_store(local), LocalArtifactStore)
    s3 = storage_config(
        _settings(
            tmp_path,
            artifact_url="s3://bucket/some/prefix",
            s3_endpoint_url="http://127.0.0.1:1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
    )
    assert s3.backend == "s3"
    assert open_store(s3).url == "s3://bucket/some/prefix"
    assert "s'" not in repr(s3)  # the secret stays out of logs


@pytest.mark.parametrize("url", ["ftp://host/x", "s3:///no-bucket", "gs://bucket/x"])
def test_unusable_artifact_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match="ARTIFACT_URL"):
        open_store(StorageConfig(artifact_url=url, scratch_dir=str(tmp_path)))


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
