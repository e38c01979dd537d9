"""A stage's files on the node that runs it: inputs from the artifact store into a scratch
directory, outputs from there into the store, the scratch directory removed afterwards.

No node assumes another node's filesystem: a stage that runs elsewhere than the stage
before it gets its inputs from the store (a symbolic link where the store is a local
directory, a download where it is object storage).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from uuid import UUID

from pipeline.errors import DownloadError, PipelineError, StorageError
from pipeline.stage_io import ArtifactSpec, StageInput, StageOutput
from pipeline.stages import input_files
from storage.artifacts import ArtifactStore, job_key, job_prefix
from storage.sources import upload_id
from storage.uploads import upload_prefix


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Any failure of the store itself becomes a retryable `storage_error`."""
    try:
        yield
    except (PipelineError, FileNotFoundError):
        raise
    except Exception as exc:
        raise StorageError(f"the artifact store failed while {what}: {exc}"[:500]) from exc


def job_scratch(scratch_root: Path, job_id: str) -> Path:
    return scratch_root / job_prefix(job_id)


def remove_stale(scratch_root: Path, max_age_s: float) -> list[Path]:
    """Remove the job directories under this node's scratch root that no live stage can
    own (untouched for longer than `max_age_s`): what force-killed stage tasks left."""
    removed: list[Path] = []
    cutoff = time.time() - max_age_s
    with contextlib.suppress(FileNotFoundError):
        for job_dir in scratch_root.iterdir():
            with contextlib.suppress(OSError):
                newest = max(
                    [job_dir.stat().st_mtime, *(p.stat().st_mtime for p in job_dir.iterdir())]
                )
                if newest < cutoff:
                    shutil.rmtree(job_dir, ignore_errors=True)
                    removed.append(job_dir)
    return removed


@contextlib.contextmanager
def stage_workspace(scratch_root: Path, job_id: str, stage: str, attempt: int) -> Iterator[Path]:
    """A fresh scratch directory for one stage attempt, removed with whatever a crashed
    earlier attempt of the job left on this node."""
    job_dir = job_scratch(scratch_root, job_id)
    shutil.rmtree(job_dir, ignore_errors=True)
    work = job_dir / f"{stage}-{attempt}"
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def stage_in(
    store: ArtifactStore, inp: StageInput, stage: str, work: Path
) -> tuple[StageInput, int]:
    """The input as the stage sees it (its work dir set to `work`, holding its input
    files) and the bytes downloaded for it. A file missing from the store is left out; the
    stage then fails saying which."""
    moved = 0
    for name in input_files(stage, inp.checkpoints):
        with contextlib.suppress(FileNotFoundError), store_errors(f"reading {name}"):
            path = store.stage_in(job_key(inp.job_id, name), work / name)
            moved += path.stat().st_size if store.remote else 0
    uploaded = upload_id(inp.url)
    if stage == "fetch" and uploaded is not None:
        source = stage_in_upload(store, uploaded, work)
        moved += source.stat().st_size if store.remote else 0
        return replace(inp, work_dir=str(work), local_source=str(source)), moved
    return replace(inp, work_dir=str(work)), moved


def stage_in_upload(store: ArtifactStore, uploaded: UUID, work: Path) -> Path:
    """The upload's file, copied from the store into `work` (under an inner directory, so
    that its name never meets the stage's own files); a `DownloadError` if it is gone."""
    with store_errors(f"reading upload {uploaded}"):
        keys = store.list_keys(upload_prefix(uploaded))
        if not keys:
            raise DownloadError(
                f"the upload {uploaded} is gone: deleted, or expired UPLOAD_TTL_S after it "
                "was made with no job naming it",
                code="not_found",
            )
        path = store.stage_in(keys[0], work / "upload" / PurePosixPath(keys[0]).name)
    if path.is_symlink():  # a local store links: the job must keep its own file, not a link
        stored = path.resolve()
        path.unlink()
        try:
            os.link(stored, path)  # the same file, which outlives the upload's deletion
        except OSError:
            shutil.copyfile(stored, path)
    return path


def stage_out(store: ArtifactStore, job_id: str, output: StageOutput) -> StageOutput:
    """Put the stage's artifact files into the store; the output then names store keys and
    sizes instead of paths on this node. If one upload fails, the ones already made are
    deleted again and the error raised (the coordinator also sweeps unregistered keys)."""
    done: list[ArtifactSpec] = []
    moved = 0
    try:
        for spec in output.artifacts:
            key = job_key(job_id, Path(spec.path).name)
            with store_errors(f"storing {key}"):
                size = store.put_file(Path(spec.path), key)
                moved += size if store.remote else 0
            done.append(replace(spec, key=key, size_bytes=size))
    except BaseException:
        with contextlib.suppress(Exception):
            store.delete_keys([s.key for s in done if s.key])
        raise
    return replace(output, artifacts=done, bytes_out=output.bytes_out + moved)
