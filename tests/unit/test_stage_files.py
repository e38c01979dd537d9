"""A stage's files on its node: inputs from the store into scratch, outputs into the store,
scratch removed; and the coordinator's sweep of objects no artifact row names."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.job_artifacts import JobArtifacts
from actors.stage_files import remove_stale, stage_in, stage_out, stage_workspace
from pipeline.errors import StorageError
from pipeline.options import StageOptions
from pipeline.stage_io import ArtifactSpec, StageInput, StageOutput
from storage.artifacts import job_key, job_prefix
from storage.db import create_db_engine, init_db
from storage.local_store import LocalArtifactStore
from storage.models import Artifact, JobType
from storage.repository import JobRepository
from storage.schemas import JobCreate
from storage.stores import StorageConfig, open_store


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def _put(store: LocalArtifactStore, tmp_path: Path, job: str, name: str, data: bytes) -> str:
    src = tmp_path / "src" / uuid.uuid4().hex / name
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    key = job_key(job, name)
    store.put_file(src, key)
    return key


def _input(job: str, checkpoints: dict[str, dict[str, Any]]) -> StageInput:
    return StageInput(
        job_id=job, url="https://x/v", options=StageOptions(), work_dir="", checkpoints=checkpoints
    )


def test_stage_in_brings_the_inputs_the_stage_needs(store: Any, tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    _put(store, tmp_path, job, "source.mp4", b"video")
    _put(store, tmp_path, job, "transcript.json", b"{}")
    _put(store, tmp_path, job, "transcript.srt", b"1\n")
    checkpoints = {
        "fetch": {"file": "source.mp4"},
        "transcribe": {"file": "transcript.json", "srt_file": "transcript.srt"},
    }
    work = tmp_path / "work"
    work.mkdir()
    inp, moved = stage_in(store, _input(job, checkpoints), "subtitles", work)
    assert inp.work_dir == str(work)
    assert sorted(p.name for p in work.iterdir()) == ["source.mp4", "transcript.srt"]
    assert (work / "source.mp4").read_bytes() == b"video"
    assert moved == 0  # a local store links, it does not copy


def test_stage_in_leaves_out_a_missing_file(store: Any, tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    work = tmp_path / "work"
    work.mkdir()
    stage_in(store, _input(job, {"fetch": {"file": "gone.mp4"}}), "audio", work)
    assert list(work.iterdir()) == []  # the stage's own check then names the file


def test_stage_out_puts_artifacts_and_names_their_keys(store: Any, tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    audio = tmp_path / "audio.wav"
    audio.write_bytes(b"x" * 10)
    out = stage_out(store, job, StageOutput({}, [ArtifactSpec("audio", str(audio), "wav")]))
    assert [(a.key, a.size_bytes) for a in out.artifacts] == [(job_key(job, "audio.wav"), 10)]
    assert store.list_keys(job_prefix(job)) == [job_key(job, "audio.wav")]


def test_a_failed_upload_takes_back_the_ones_before_it(store: Any, tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    first = tmp_path / "clip_01.mp4"
    first.write_bytes(b"1")
    specs = [
        ArtifactSpec("clip", str(first), "mp4"),
        ArtifactSpec("clip", str(tmp_path / "never-written.mp4"), "mp4"),
    ]
    with pytest.raises(FileNotFoundError):
        stage_out(store, job, StageOutput({}, specs))
    assert store.list_keys(job_prefix(job)) == []


def test_workspace_is_removed_however_the_stage_ends(tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    stale = tmp_path / job / "audio-1"  # left by a killed attempt
    stale.mkdir(parents=True)
    (stale / "part.wav").write_bytes(b"x")
    with pytest.raises(RuntimeError), stage_workspace(tmp_path, job, "audio", 2) as work:
        assert work == tmp_path / job / "audio-2" and work.is_dir()
        assert not stale.exists()
        (work / "out.wav").write_bytes(b"partial")
        raise RuntimeError("the stage failed")
    assert not (tmp_path / job).exists()


def test_sweep_deletes_only_unregistered_objects(store: Any, tmp_path: Path) -> None:
    repo = JobRepository(create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}"))
    init_db(repo.engine)
    now = datetime.now(UTC)
    job, _ = repo.create_job(
        JobCreate(youtube_url="https://x/v", job_type=JobType.audio_extraction),
        default_max_retries=0,
        now=now,
    )
    jid = str(job.id)
    kept = _put(store, tmp_path, jid, "audio.wav", b"a")
    orphan = _put(store, tmp_path, jid, "clip_01.mp4", b"c")
    other_job = _put(store, tmp_path, str(uuid.uuid4()), "x.wav", b"x")
    repo.add_artifact(
        Artifact(job_id=job.id, kind="audio", filename="audio.wav", storage_path=kept,
                 format="wav", content_type="audio/wav", size_bytes=1)
    )  # fmt: skip
    assert JobArtifacts(repo, store).sweep(jid) == [orphan]
    assert store.list_keys(job_prefix(jid)) == [kept]
    assert store.size(other_job) == 1


def test_stale_job_directories_are_removed(tmp_path: Path) -> None:
    old, fresh = tmp_path / str(uuid.uuid4()), tmp_path / str(uuid.uuid4())
    for job_dir in (old, fresh):
        (job_dir / "fetch-1").mkdir(parents=True)
        (job_dir / "fetch-1" / "source.mp4.part").write_bytes(b"x")
    long_ago = time.time() - 7200
    for path in (old, old / "fetch-1"):
        os.utime(path, (long_ago, long_ago))
    assert remove_stale(tmp_path, max_age_s=3600) == [old]
    assert not old.exists() and fresh.is_dir()
    assert remove_stale(tmp_path / "missing", max_age_s=1) == []


def test_a_store_that_refuses_fails_the_stage_retryably(s3_server: Any, tmp_path: Path) -> None:
    refusing = open_store(
        StorageConfig(
            artifact_url=s3_server.artifact_url("refused"),
            scratch_dir=str(tmp_path),
            s3_endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=s3_server.access_key_id,
            aws_secret_access_key="not-the-secret",
            aws_region=s3_server.region,
        )
    )
    audio = tmp_path / "audio.wav"
    audio.write_bytes(b"x")
    with pytest.raises(StorageError, match="storing") as caught:
        stage_out(
            refusing, str(uuid.uuid4()), StageOutput({}, [ArtifactSpec("audio", str(audio), "wav")])
        )
    assert caught.value.code == "storage_error" and caught.value.retryable
