"""Which artifact store and scratch directory a process uses, from the settings.

`StorageConfig` is the picklable part of the settings that every process touching
artifacts needs (the coordinator, ingress replicas, stage tasks, the Transcriber); each
opens its own store with `open_store`. `ARTIFACT_URL` picks the backend: empty or
`file:///path` for a local directory (ARTIFACT_DIR by default), `s3://bucket/prefix` for
S3-compatible object storage.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from config.settings import Settings
from storage.artifacts import ArtifactStore
from storage.local_store import LocalArtifactStore
from storage.s3_store import S3ArtifactStore


class StoreURLError(ValueError):
    """An ARTIFACT_URL vpa cannot use."""


@dataclass(frozen=True)
class StorageConfig:
    artifact_url: str
    scratch_dir: str
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_region: str = "us-east-1"
    # A job's scratch directory older than this was left by a killed stage (no stage runs
    # longer than JOB_TIMEOUT): the next stage task on the node removes it.
    scratch_max_age_s: float = 4 * 3600.0

    @property
    def backend(self) -> str:
        return "s3" if self.artifact_url.startswith("s3://") else "local"


def storage_config(settings: Settings) -> StorageConfig:
    url = settings.artifact_url or settings.artifact_path.as_uri()
    if "://" not in url:  # a plain path
        url = Path(url).expanduser().resolve().as_uri()
    return StorageConfig(
        artifact_url=url,
        scratch_dir=str(settings.scratch_path),
        s3_endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_region=settings.aws_region,
        scratch_max_age_s=settings.job_timeout + 600.0,
    )


def open_store(config: StorageConfig) -> ArtifactStore:
    parsed = urlparse(config.artifact_url)
    if parsed.scheme == "file":
        return LocalArtifactStore(unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreURLError(f"ARTIFACT_URL {config.artifact_url!r} names no bucket")
        return S3ArtifactStore(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=config.s3_endpoint_url,
            access_key_id=config.aws_access_key_id,
            secret_access_key=config.aws_secret_access_key,
            region=config.aws_region,
        )
    raise StoreURLError(
        f"ARTIFACT_URL {config.artifact_url!r}: use a directory, file:///path or s3://bucket/prefix"
    )


def node_scratch(config: StorageConfig, node_id: str) -> Path:
    """This node's scratch root: SCRATCH_DIR/<node id>, distinct per Ray node even when
    several nodes share one machine (or one disk)."""
    return Path(config.scratch_dir) / (node_id[:16] or "node")


@contextlib.contextmanager
def staged_file(store: ArtifactStore, key: str, scratch: Path) -> Iterator[Path]:
    """The object as a local file for the duration of the block (`ArtifactStore.stage_in`
    into a directory of its own under `scratch`, removed afterwards)."""
    work = scratch / f"in-{uuid.uuid4().hex[:12]}"
    try:
        yield store.stage_in(key, work / Path(key).name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
