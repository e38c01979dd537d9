"""Deletes and the retention sweep (actors/job_removal.py) in a coordinator on the fake
clock, a real SQLite database and a local artifact store: finished jobs only, oldest
first, until the limit; files, rows and events; a store or a database that fails."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.exc import OperationalError

from actors.errors import JobConflict
from pipeline.errors import MediaError
from storage.artifacts import job_key, job_prefix
from storage.models import Artifact, JobStatus
from tests.unit.coordinator_fakes import Harness, MakeHarness
from tests.unit.test_coordinator_outage import REFUSED, wait_for

DAY_S = 86400.0
LONG = {"job_timeout_s": 30 * DAY_S}  # no attempt held open by a test times out


def store_files(h: Harness, job_id: str, *sizes: int) -> list[str]:
    """Put files of `sizes` bytes into the job's store, each with its artifact row."""
    keys = []
    for i, size in enumerate(sizes):
        src = h.tmp_path / f"upload-{job_id}-{i}"
        src.write_bytes(b"x" * size)
        key = job_key(job_id, f"file{i}.bin")
        h.store.put_file(src, key)
        h.repo.add_artifact(
            Artifact(
                job_id=UUID(job_id),
                kind=f"kind{i}",
                filename=f"file{i}.bin",
                storage_path=key,
                format="bin",
                content_type="application/octet-stream",
                size_bytes=size,
            )
        )
        keys.append(key)
    return keys


def files_of(h: Harness, job_id: str) -> list[str]:
    """The job's objects in the store, and so on disk."""
    keys = h.store.list_keys(job_prefix(job_id))
    on_disk = sorted(p.name for p in (h.store.root / job_id).glob("*"))
    assert on_disk == [k.rsplit("/", 1)[1] for k in keys]
    return keys


async def completed(h: Harness) -> str:
    job_id = await h.submit()
    await h.run_to_completion(job_id)
    return job_id


async def failed(h: Harness) -> str:
    job_id = await h.submit()
    (await h.stages.next_started(job_id)).fail(MediaError("no audio", code="no_audio"))
    assert (await h.ended(job_id)).status == JobStatus.failed
    return job_id


async def cancelled(h: Harness) -> str:
    job_id = await h.submit()
    await h.stages.next_started(job_id)
    assert (await h.core.cancel(job_id)).status == JobStatus.cancelled
    return job_id


def published(h: Harness, event: str) -> list[dict[str, Any]]:
    return [m for m in h.published.messages if m["event"] == event]


def break_store_for(h: Harness, monkeypatch: pytest.MonkeyPatch, job_id: str) -> None:
    """Deleting `job_id`'s objects fails (an S3 error, a read-only disk)."""
    real = h.store.delete_job

    def delete_job(which: UUID | str) -> int:
        if str(which) == job_id:
            raise OSError("the store refused the delete")
        return real(which)

    monkeypatch.setattr(h.store, "delete_job", delete_job)


async def test_expiry_deletes_old_finished_jobs_with_their_events_and_files(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_concurrent_jobs=2, retention_days=1.0, **LONG)
    running = await h.submit()
    await h.stages.next_started(running)  # runs past the limit, never finishes
    store_files(h, running, 30)
    done = await completed(h)
    done_keys = store_files(h, done, 10, 20)
    old = [done]
    for finish in (failed, cancelled):
        h.clock.advance(10)
        old.append(await finish(h))
    blocker = await h.submit()
    await h.stages.next_started(blocker)
    queued, recent = await h.submit(), await h.submit()
    assert files_of(h, done) == done_keys
    h.clock.advance(DAY_S + 1)
    await h.core.cancel(recent)  # finished now: not old enough
    with caplog.at_level(logging.INFO, logger="vpa.coordinator"):
        counts = await h.core.removal.sweep_logged()
    assert counts is not None and (counts.expired_jobs, counts.failed_jobs) == (3, 0)
    for job_id in old:
        assert h.repo.get_job(UUID(job_id)) is None
        assert h.events(job_id) == [] and h.repo.list_artifacts(UUID(job_id)) == []
        assert files_of(h, job_id) == []
    expired = published(h, "expired")
    assert [m["job_id"] for m in expired] == old  # oldest first, each published live
    for message in expired:
        assert message["data"]["status"] in {"completed", "failed", "cancelled"}
        assert message["data"]["event_data"] == {"retention_days": 1.0}
        assert "RETENTION_DAYS" in message["data"]["message"]
    assert [h.job(j).status for j in (running, blocker, queued, recent)] == [
        JobStatus.processing,
        JobStatus.processing,
        JobStatus.queued,
        JobStatus.cancelled,
    ]
    assert len(files_of(h, running)) == 1
    assert "retention sweep: 3 job(s) expired (RETENTION_DAYS=1)" in caplog.text


async def test_eviction_takes_the_oldest_finished_jobs_artifacts_until_under_the_limit(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=2, artifact_max_bytes=650, **LONG)
    running = await h.submit()
    await h.stages.next_started(running)
    store_files(h, running, 500)
    jobs = []
    for sizes in [(60, 40), (100,), (100,)]:
        jobs.append(await completed(h))
        store_files(h, jobs[-1], *sizes)
        h.clock.advance(10)
    oldest, older, newest = jobs
    assert h.repo.artifact_bytes() == 800
    counts = await h.core.removal.sweep()
    assert (counts.evicted_jobs, counts.evicted_files, counts.evicted_bytes) == (2, 3, 200)
    assert counts.over_limit_bytes == 0 and h.repo.artifact_bytes() == 600
    for job_id, files, size in [(oldest, 2, 100), (older, 1, 100)]:
        job = h.job(job_id)
        assert job.status == JobStatus.completed and job.stage_outputs == {}
        assert h.repo.list_artifacts(UUID(job_id)) == [] and files_of(h, job_id) == []
        event = h.last_event(job_id, "artifacts_evicted")
        assert event.data == {
            "status": "completed",
            "progress": 100.0,
            "files": files,
            "bytes": size,
            "artifact_max_bytes": 650,
        }
    assert [m["job_id"] for m in published(h, "artifacts_evicted")] == [oldest, older]
    assert len(files_of(h, newest)) == 1 and len(h.repo.list_artifacts(UUID(newest))) == 1
    assert len(files_of(h, running)) == 1
    again = await h.core.removal.sweep()
    assert again.evicted_jobs == 0 and len(published(h, "artifacts_evicted")) == 2


async def test_artifacts_of_running_jobs_are_never_evicted(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_concurrent_jobs=2, artifact_max_bytes=100, **LONG)
    running = await h.submit()
    await h.stages.next_started(running)
    store_files(h, running, 500)
    done = await completed(h)
    store_files(h, done, 50)
    with caplog.at_level(logging.INFO, logger="vpa.coordinator"):
        counts = await h.core.removal.sweep_logged()
    assert counts is not None
    assert (counts.evicted_jobs, counts.evicted_bytes, counts.over_limit_bytes) == (1, 50, 400)
    assert len(files_of(h, running)) == 1 and len(h.repo.list_artifacts(UUID(running))) == 1
    assert "artifacts still take 400 bytes above ARTIFACT_MAX_BYTES" in caplog.text


async def test_an_expired_job_whose_files_cannot_be_deleted_stays_whole_and_the_sweep_goes_on(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_concurrent_jobs=1, retention_days=1.0, **LONG)
    stuck, other = await completed(h), await completed(h)
    keys = store_files(h, stuck, 10)
    store_files(h, other, 10)
    h.clock.advance(2 * DAY_S)
    break_store_for(h, monkeypatch, stuck)
    counts = await h.core.removal.sweep()
    assert (counts.expired_jobs, counts.failed_jobs) == (1, 1)
    assert h.repo.get_job(UUID(other)) is None and files_of(h, other) == []
    assert h.job(stuck).status == JobStatus.completed
    assert files_of(h, stuck) == keys and len(h.repo.list_artifacts(UUID(stuck))) == 1
    assert h.event_types(stuck)[-1] == "expired"
    assert "expired, but deleting it failed" in caplog.text
    monkeypatch.undo()
    assert (await h.core.removal.sweep()).expired_jobs == 1  # the next sweep finishes it
    assert h.repo.get_job(UUID(stuck)) is None and files_of(h, stuck) == []


async def test_eviction_skips_a_job_whose_files_cannot_be_deleted_and_keeps_its_rows(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(max_concurrent_jobs=1, artifact_max_bytes=250, **LONG)
    jobs = []
    for _ in range(3):
        jobs.append(await completed(h))
        store_files(h, jobs[-1], 100)
        h.clock.advance(10)
    oldest, older, newest = jobs
    break_store_for(h, monkeypatch, oldest)
    counts = await h.core.removal.sweep()
    assert (counts.evicted_jobs, counts.failed_jobs, counts.over_limit_bytes) == (1, 1, 0)
    assert len(h.repo.list_artifacts(UUID(oldest))) == 1 and len(files_of(h, oldest)) == 1
    assert "artifacts_evicted" not in h.event_types(oldest)
    assert h.repo.list_artifacts(UUID(older)) == [] and files_of(h, older) == []
    assert len(files_of(h, newest)) == 1


async def test_an_unreachable_database_ends_the_sweep_and_is_watched(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_concurrent_jobs=1, retention_days=1.0, **LONG)
    done = await completed(h)
    h.clock.advance(2 * DAY_S)
    real = h.repo.expired_jobs

    def refused(*_: Any) -> list[UUID]:
        raise OperationalError("SELECT", None, Exception(REFUSED))

    monkeypatch.setattr(h.repo, "expired_jobs", refused)
    assert await h.core.removal.sweep_logged() is None
    assert "retention sweep stopped: the database is unreachable" in caplog.text
    assert h.core._outage.watching  # the queue is rebuilt once it is back
    monkeypatch.setattr(h.repo, "expired_jobs", real)
    assert (await h.core.removal.sweep()).expired_jobs == 1
    assert h.repo.get_job(UUID(done)) is None


async def test_a_job_is_not_retried_while_its_files_are_deleted(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(max_concurrent_jobs=1, artifact_max_bytes=1, **LONG)
    job_id = await failed(h)
    store_files(h, job_id, 10)
    entered, release = threading.Event(), threading.Event()
    real = h.store.delete_job

    def held_delete(which: UUID | str) -> int:
        entered.set()
        assert release.wait(30)
        return real(which)

    monkeypatch.setattr(h.store, "delete_job", held_delete)
    sweep = asyncio.ensure_future(h.core.removal.sweep())
    assert await asyncio.to_thread(entered.wait, 30)
    with pytest.raises(JobConflict, match="being deleted"):
        await h.core.retry(job_id)
    release.set()
    assert (await sweep).evicted_jobs == 1
    assert (await h.core.retry(job_id)).status == JobStatus.queued
    first = await h.stages.next_started(job_id)
    assert first.name == "fetch" and first.inp.checkpoints == {}  # its files are gone


async def test_the_sweep_runs_at_start_then_every_interval_and_at_a_changed_policy(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_concurrent_jobs=1, retention_days=5.0, retention_sweep_s=600.0, **LONG)
    removal = h.core.removal
    first = await completed(h)
    h.clock.advance(2 * DAY_S)
    removal.start()
    await wait_for(lambda: removal.last_sweep is not None)
    swept = removal.last_sweep
    assert swept is not None and swept.expired_jobs == 0
    h.core.reconfigure(replace(h.config, max_concurrent_jobs=2))  # retention unchanged
    await asyncio.sleep(0.05)
    assert removal.last_sweep is swept
    h.core.reconfigure(replace(h.config, retention_days=1.0))  # sweeps at once
    await wait_for(lambda: h.repo.get_job(UUID(first)) is None)
    second = await completed(h)
    swept = removal.last_sweep

    def broken(*_: Any) -> list[UUID]:
        raise ValueError("a bug")

    monkeypatch.setattr(h.repo, "expired_jobs", broken)
    h.clock.advance(600)  # the sweep fails: logged, and the loop goes on
    await wait_for(lambda: removal.last_sweep is not swept)
    assert "retention sweep failed" in caplog.text
    monkeypatch.undo()
    h.clock.advance(DAY_S)  # the next sweeps, on the interval, find the second job old
    await wait_for(lambda: h.repo.get_job(UUID(second)) is None)


async def test_delete_removes_files_first_so_a_failing_store_leaves_the_job_whole(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(max_concurrent_jobs=1)
    job_id = await completed(h)
    keys = store_files(h, job_id, 10)
    break_store_for(h, monkeypatch, job_id)
    with pytest.raises(OSError):
        await h.core.delete(job_id)
    assert h.job(job_id).status == JobStatus.completed and files_of(h, job_id) == keys
    assert len(h.repo.list_artifacts(UUID(job_id))) == 1
    monkeypatch.undo()
    await h.core.delete(job_id)
    assert h.repo.get_job(UUID(job_id)) is None and files_of(h, job_id) == []
    assert h.events(job_id) == []
