"""`JobArtifacts`: a job's objects in the artifact store and the artifact rows naming them.

A stage task puts its files into the store; the coordinator then registers them (one row
per file, replacing the rows of the kinds a re-run stage produced again) and sweeps the
job's objects that no row names.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from uuid import UUID, uuid4

from config.logging import job_logger
from pipeline.errors import PipelineError
from pipeline.stages import StageOutput
from storage.artifacts import ArtifactStore, content_type_for, job_prefix
from storage.models import Artifact
from storage.repository import JobRepository


class JobArtifacts:
    def __init__(self, repo: JobRepository, store: ArtifactStore) -> None:
        self.repo = repo
        self.store = store

    def register(self, job_id: str, stage: str, output: StageOutput) -> None:
        """Record the files a completed stage put into the store."""
        kinds = {spec.kind for spec in output.artifacts}
        if kinds:
            self.repo.delete_artifacts(UUID(job_id), kinds=sorted(kinds))
        for spec in output.artifacts:
            if spec.key is None or spec.size_bytes is None:
                raise PipelineError(f"the {stage} stage returned a {spec.kind} not in the store")
            name = PurePosixPath(spec.key).name
            self.repo.add_artifact(
                Artifact(
                    id=UUID(spec.id) if spec.id else uuid4(),
                    job_id=UUID(job_id),
                    kind=spec.kind,
                    filename=name,
                    storage_path=spec.key,
                    format=spec.format,
                    content_type=content_type_for(name),
                    size_bytes=spec.size_bytes,
                    duration_s=spec.duration_s,
                    meta={"stage": stage, **spec.metadata},
                )
            )

    def sweep(self, job_id: str) -> list[str]:
        """Delete the job's objects that no artifact row names: what an attempt that failed,
        was cancelled or lost its node uploaded before it ended, and files a re-run stage
        replaced. Returns the keys deleted."""
        keys = set(self.store.list_keys(job_prefix(job_id)))
        kept = {a.storage_path for a in self.repo.list_artifacts(UUID(job_id))}
        orphans = sorted(keys - kept)
        if orphans:
            self.store.delete_keys(orphans)
            job_logger(job_id).info("removed %d unregistered object(s)", len(orphans))
        return orphans

    async def sweep_quietly(self, job_id: str) -> None:
        """`sweep` in a thread, logging instead of raising if the store fails."""
        try:
            await asyncio.to_thread(self.sweep, job_id)
        except Exception:  # the store is down: the next attempt's sweep tries again
            job_logger(job_id).warning("artifact sweep failed", exc_info=True)
