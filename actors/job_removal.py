"""`JobRemoval`: finished jobs and their files deleted, on request and by retention.

The coordinator (`CoordinatorCore`) holds one. It serves `DELETE /api/v1/jobs/{id}`
(`delete`) and runs the retention sweep once at start and then every `retention_sweep_s`
of the coordinator's settings (`run`, on the coordinator's timer):
- RETENTION_DAYS: a job that finished longer ago than that gets an `expired` event, written
  and published like every event (its sockets and the broadcast learn why it goes), then is
  deleted by the same path as the DELETE command;
- ARTIFACT_MAX_BYTES: while the artifact rows of all jobs add up to more, the oldest
  finished jobs lose their artifacts (files, then rows) with an `artifacts_evicted` event;
  the jobs stay.
Rules it keeps:
- only finished jobs whose attempt has ended are touched; a job being removed is `busy`,
  and the coordinator refuses to retry it meanwhile, so no attempt starts on files that are
  being deleted;
- files go first, rows after: a store that fails leaves the job's rows as they were (logged;
  the next sweep tries again), never files that no row names;
- a database found unreachable ends the sweep (the next one tries again) and is reported to
  the coordinator's outage watch (actors/db_outage.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from actors.clock import Timer, finished_within
from actors.coordinator_config import CoordinatorConfig
from actors.errors import JobConflict, JobNotFound
from actors.running_job import JobWriter
from config.logging import job_logger
from storage.artifacts import ArtifactStore
from storage.db import database_unreachable
from storage.models import TERMINAL_STATUSES, EventType
from storage.retention import StoredArtifacts
from storage.uploads import UploadRepository

BATCH = 200  # jobs a sweep reads at a time
log = logging.getLogger("vpa.coordinator")


class Coordinator(Protocol):
    """What removal reads of the coordinator (`CoordinatorCore`)."""

    config: CoordinatorConfig
    store: ArtifactStore

    @property
    def running(self) -> Mapping[str, object]: ...

    def saw_outage(self, exc: BaseException) -> bool: ...


@dataclass
class SweepCounts:
    """What one retention sweep did."""

    expired_jobs: int = 0
    evicted_jobs: int = 0
    evicted_files: int = 0
    evicted_bytes: int = 0
    failed_jobs: int = 0  # the store failed: tried again at the next sweep
    expired_uploads: int = 0  # uploads no job named, UPLOAD_TTL_S after they were made
    over_limit_bytes: int = 0  # still above ARTIFACT_MAX_BYTES: the rest is not finished


def _policy(config: CoordinatorConfig) -> tuple[float, int | None, float]:
    return config.retention_days, config.artifact_max_bytes, config.retention_sweep_s


class JobRemoval:
    def __init__(
        self,
        coordinator: Coordinator,
        write: JobWriter,
        now: Callable[[], datetime],
        timer: Timer,
    ) -> None:
        self._coordinator = coordinator
        self._write = write
        self._db = write.db
        self._repo = write.repo
        self._now = now
        self._timer = timer
        self.busy: set[str] = set()  # jobs whose files the sweep is deleting now
        self.last_sweep: SweepCounts | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._swept_with = _policy(coordinator.config)
        self._uploads = UploadRepository(self._repo.engine)

    # ------------------------------------------------------------------ the command
    async def delete(self, job_id: str) -> None:
        """A finished job, with its events, artifact rows and files (`DELETE`)."""
        job = await self._db.run(self._repo.get_job, UUID(job_id))
        if job is None:
            raise JobNotFound(f"Job {job_id} not found")
        if job.status not in TERMINAL_STATUSES or job_id in self._coordinator.running:
            raise JobConflict(
                f"Job {job_id} is {job.status.value}; only completed, failed or cancelled "
                "jobs can be deleted"
            )
        await self._remove(job_id)

    async def _remove(self, job_id: str) -> None:
        """The job's files, then its rows: a store that fails leaves the job whole."""
        await asyncio.to_thread(self._coordinator.store.delete_job, UUID(job_id))
        await self._db.run(self._repo.delete_job, UUID(job_id))

    # ------------------------------------------------------------------ the sweep
    def start(self) -> None:
        """Start the periodic sweep, once (`close` stops it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        """Sweep, then wait `retention_sweep_s` (or a `reconfigured` wake-up), for ever."""
        while True:
            self._swept_with = _policy(self._coordinator.config)
            await self.sweep_logged()
            if _policy(self._coordinator.config) != self._swept_with:
                continue  # changed while it swept: sweep again with the new settings
            self._wake = asyncio.get_running_loop().create_future()
            interval_s = self._coordinator.config.retention_sweep_s
            await finished_within(self._wake, interval_s, self._timer)

    def reconfigured(self) -> None:
        """New settings: sweep now if the retention ones changed, so a shorter interval or
        a new limit takes effect at once rather than after the wait already under way."""
        changed = _policy(self._coordinator.config) != self._swept_with
        if changed and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def sweep_logged(self) -> SweepCounts | None:
        """`sweep`, logged where it did anything; a failure ends it, never the loop."""
        config = self._coordinator.config
        try:
            counts = await self.sweep()
        except Exception as exc:
            if self._coordinator.saw_outage(exc):
                log.warning("retention sweep stopped: the database is unreachable")
            else:
                log.exception("retention sweep failed; the next one tries again")
            return None
        if counts.expired_uploads:
            log.info("retention sweep: %d upload(s) expired", counts.expired_uploads)
        if config.retention_days <= 0 and config.artifact_max_bytes is None:
            return counts
        log.info(
            "retention sweep: %d job(s) expired (RETENTION_DAYS=%g); %d job(s) lost their "
            "artifacts, %d file(s), %d bytes (ARTIFACT_MAX_BYTES=%s); %d job(s) failed",
            counts.expired_jobs,
            config.retention_days,
            counts.evicted_jobs,
            counts.evicted_files,
            counts.evicted_bytes,
            config.artifact_max_bytes,
            counts.failed_jobs,
        )
        if counts.over_limit_bytes:
            log.warning(
                "artifacts still take %d bytes above ARTIFACT_MAX_BYTES: jobs not finished "
                "yet, or whose files could not be deleted, hold them",
                counts.over_limit_bytes,
            )
        return counts

    async def sweep(self) -> SweepCounts:
        """One pass of each rule the settings turn on; `last_sweep` fills as it goes."""
        config = self._coordinator.config
        counts = self.last_sweep = SweepCounts()
        await self._expire_uploads(config.upload_ttl_s, counts)
        if config.retention_days > 0:
            await self._expire(config.retention_days, counts)
        if config.artifact_max_bytes is not None:
            await self._evict(config.artifact_max_bytes, counts)
        return counts

    async def _expire_uploads(self, ttl_s: float, counts: SweepCounts) -> None:
        """Delete the uploads no job names, `ttl_s` after they were made: files, then rows
        (a store that fails keeps the row, for the next sweep)."""
        cutoff = self._now() - timedelta(seconds=ttl_s)
        while found := await self._db.run(self._uploads.unreferenced_before, cutoff, BATCH):
            gone = []
            for upload in found:
                try:
                    keys = [upload.storage_path]
                    await asyncio.to_thread(self._coordinator.store.delete_keys, keys)
                    gone.append(upload.id)
                except Exception:
                    log.warning("upload %s not deleted; the next sweep tries again", upload.id)
            await self._db.run(self._uploads.delete, gone)
            counts.expired_uploads += len(gone)
            if len(gone) < len(found):
                return  # the store fails: stop here, the rest waits for the next sweep

    def _take(self, job_id: str) -> bool:
        """Mark the job busy, unless an attempt of it runs or the sweep already holds it."""
        if job_id in self._coordinator.running or job_id in self.busy:
            return False
        self.busy.add(job_id)
        return True

    async def _expire(self, days: float, counts: SweepCounts) -> None:
        cutoff = self._now() - timedelta(days=days)
        kept: set[str] = set()  # found but not deleted: not read again in this sweep
        while True:
            limit = BATCH + len(kept)
            found = [str(j) for j in await self._db.run(self._repo.expired_jobs, cutoff, limit)]
            fresh = [j for j in found if j not in kept]
            for job_id in fresh:
                if await self._expire_one(job_id, days, counts):
                    counts.expired_jobs += 1
                else:
                    kept.add(job_id)
            if not fresh or len(found) < limit:
                return

    async def _expire_one(self, job_id: str, days: float, counts: SweepCounts) -> bool:
        if not self._take(job_id):
            return False
        try:
            job = await self._write(
                job_id,
                EventType.expired,
                message=f"finished more than {days:g} day(s) ago: deleted (RETENTION_DAYS)",
                data={"retention_days": days},
                expected=set(TERMINAL_STATUSES),
            )
            if job is None:  # deleted meanwhile
                return False
            try:
                await self._remove(job_id)
            except Exception as exc:
                if database_unreachable(exc):
                    raise
                counts.failed_jobs += 1
                job_logger(job_id).warning("expired, but deleting it failed", exc_info=True)
                return False
        finally:
            self.busy.discard(job_id)
        job_logger(job_id).info("expired: deleted with its artifacts (RETENTION_DAYS)")
        return True

    async def _evict(self, max_bytes: int, counts: SweepCounts) -> None:
        total = await self._db.run(self._repo.artifact_bytes)
        kept: set[str] = set()
        while total > max_bytes:
            limit = BATCH + len(kept)
            found = await self._db.run(self._repo.eviction_candidates, limit)
            fresh = [c for c in found if str(c.job_id) not in kept]
            for stored in fresh:
                if total <= max_bytes:
                    break
                freed = await self._evict_one(stored, max_bytes, counts)
                if freed is None:
                    kept.add(str(stored.job_id))
                else:
                    total -= freed
            if not fresh or len(found) < limit:
                break
        counts.over_limit_bytes = max(total - max_bytes, 0)

    async def _evict_one(
        self, stored: StoredArtifacts, max_bytes: int, counts: SweepCounts
    ) -> int | None:
        """Delete one finished job's artifacts; the bytes their rows counted, or None."""
        job_id = str(stored.job_id)
        if not self._take(job_id):
            return None
        try:
            rows = await self._db.run(self._repo.list_artifacts, stored.job_id)
            try:
                await asyncio.to_thread(self._coordinator.store.delete_job, stored.job_id)
            except Exception:
                counts.failed_jobs += 1
                job_logger(job_id).warning("deleting its artifacts failed", exc_info=True)
                return None
            size = sum(a.size_bytes for a in rows)
            job = await self._write(
                job_id,
                EventType.artifacts_evicted,
                # The checkpoints name files that are gone: a retry starts from the first stage.
                {"stage_outputs": {}},
                message=f"{len(rows)} artifact(s), {size} bytes, deleted (ARTIFACT_MAX_BYTES)",
                data={"files": len(rows), "bytes": size, "artifact_max_bytes": max_bytes},
                expected=set(TERMINAL_STATUSES),
            )
            if job is None:  # deleted meanwhile
                return None
            await self._db.run(self._repo.delete_artifacts, stored.job_id)
        finally:
            self.busy.discard(job_id)
        counts.evicted_jobs += 1
        counts.evicted_files += len(rows)
        counts.evicted_bytes += size
        job_logger(job_id).info("artifacts evicted: %d file(s), %d bytes", len(rows), size)
        return size
