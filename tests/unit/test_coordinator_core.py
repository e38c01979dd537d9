"""`CoordinatorCore` without Ray: the queue order, the concurrency limit, idempotent submits,
recovery after a restart, manual retries and cancelling queued jobs, driven through a fake
stage runner and a fake clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from actors.coordinator_config import CoordinatorConfig
from actors.errors import JobConflict
from actors.job_queue import STATUS_IDS
from pipeline.errors import MediaError, WorkerCrashed
from pipeline.stages import StageOutput
from storage.models import JobStatus, JobType
from storage.schemas import JobCreate
from tests.unit.coordinator_fakes import MakeHarness


async def test_higher_priority_first_and_fifo_within_a_priority(make_harness: MakeHarness) -> None:
    h = make_harness(max_concurrent_jobs=1)
    blocker = await h.submit(priority=5)
    submitted = [("p1", 1), ("p9a", 9), ("p5", 5), ("p9b", 9), ("p0", 0)]
    ids = {name: await h.submit(priority=priority) for name, priority in submitted}
    status = h.core.queue_status()
    assert status["queued_order"] == [ids[n] for n in ("p9a", "p9b", "p5", "p1", "p0")]
    assert status["queued_by_priority"] == {
        "9": [ids["p9a"], ids["p9b"]],
        "5": [ids["p5"]],
        "1": [ids["p1"]],
        "0": [ids["p0"]],
    }
    for job_id in [blocker, ids["p9a"], ids["p9b"], ids["p5"], ids["p1"], ids["p0"]]:
        assert (await h.run_to_completion(job_id)).status == JobStatus.completed
    assert h.published.starts() == [blocker, *(ids[n] for n in ("p9a", "p9b", "p5", "p1", "p0"))]


async def test_no_more_than_the_limit_run_and_the_next_starts_when_one_ends(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=2)
    jobs = [await h.submit() for _ in range(5)]
    first, second = await h.stages.next_started(), await h.stages.next_started()
    assert (first.job_id, second.job_id) == (jobs[0], jobs[1])
    assert h.stages.none_waiting()
    status = h.core.queue_status()
    assert status["running_count"] == 2 and status["available_slots"] == 0
    assert status["queued_order"] == jobs[2:]
    assert [w["current_job"] for w in h.core.workers()] == jobs[:2]

    # the second job ends first: its slot goes to the third job, and only to it
    second.complete()
    second_audio = await h.stages.next_started()
    assert (second_audio.job_id, second_audio.name) == (jobs[1], "audio")
    second_audio.complete()
    assert (await h.ended(jobs[1])).status == JobStatus.completed
    third = await h.stages.next_started()
    assert third.job_id == jobs[2] and h.stages.none_waiting()
    assert [w["current_job"] for w in h.core.workers()] == [jobs[0], jobs[2]]
    assert h.core.queue_status()["queued_order"] == jobs[3:]

    first.complete()
    third.complete()
    for job_id in jobs[:1] + jobs[2:]:
        await h.run_to_completion(job_id)
    assert [h.job(j).status for j in jobs] == [JobStatus.completed] * 5
    assert h.published.starts() == [jobs[0], jobs[1], jobs[2], jobs[3], jobs[4]]
    assert h.published.most_running() == 2
    assert h.core.queue_status()["available_slots"] == 2


async def test_a_new_limit_applies_as_running_jobs_end(make_harness: MakeHarness) -> None:
    h = make_harness(max_concurrent_jobs=2)
    jobs = [await h.submit() for _ in range(5)]
    first, second = await h.stages.next_started(), await h.stages.next_started()
    h.core.reconfigure(CoordinatorConfig(max_concurrent_jobs=1))
    assert h.core.queue_status()["available_slots"] == 0
    second.complete()
    await h.run_to_completion(jobs[1])  # slot 1 is past the new limit: it is not reused
    assert h.stages.none_waiting() and h.core.queue_status()["queued_order"] == jobs[2:]
    first.complete()
    await h.run_to_completion(jobs[0])
    third = await h.stages.next_started()
    assert third.job_id == jobs[2]
    assert [w["current_job"] for w in h.core.workers()] == [jobs[2]]
    h.core.reconfigure(CoordinatorConfig(max_concurrent_jobs=3))  # two more start at once
    assert [(await h.stages.next_started()).job_id for _ in range(2)] == jobs[3:]
    assert h.core.queue_status()["available_slots"] == 0


async def test_a_known_idempotency_key_returns_the_same_job_and_runs_nothing(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=1)
    data = JobCreate(
        youtube_url="https://media.example/a.mp4",
        job_type=JobType.audio_extraction,
        idempotency_key="upload-42",
    )
    job, created = await h.core.submit(data)
    again, created_again = await h.core.submit(data)
    assert (created, created_again) == (True, False)
    assert again.id == job.id
    assert (await h.run_to_completion(str(job.id))).status == JobStatus.completed
    after, created_after = await h.core.submit(data)
    assert after.id == job.id and not created_after and after.status == JobStatus.completed
    assert [(s.name, s.attempt) for s in h.stages.stages] == [("fetch", 1), ("audio", 1)]
    assert h.event_types(str(job.id)).count("started") == 1
    assert h.core.queue_status()["queued"] == 0


async def test_recovery_requeues_pending_and_queued_jobs_in_queue_order(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=0)  # nothing runs before the restart
    low = await h.submit(priority=2)
    high = await h.submit(priority=8)
    mid = await h.submit(priority=5)
    # a job created but not yet queued when the coordinator died
    pending, _ = h.repo.create_job(
        JobCreate(
            youtube_url="https://media.example/p.mp4", job_type=JobType.audio_extraction, priority=8
        ),
        default_max_retries=3,
        now=h.clock.now(),
    )
    h.clock.advance(1.0)
    core = await h.restart()
    assert await core.recover() == 4
    assert h.event_types(str(pending.id))[-1] == "queued"
    order = [high, str(pending.id), mid, low]  # priority first, then the time queued
    assert core.queue_status()["queued_order"] == order
    core.reconfigure(CoordinatorConfig(max_concurrent_jobs=1))
    for job_id in order:
        await h.run_to_completion(job_id)
    assert h.published.starts() == order
    assert await core.recover() == 0  # nothing left to recover, nothing queued twice


async def test_recovery_resumes_a_processing_job_after_its_last_checkpoint(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=1)
    job_id = await h.submit(job_type=JobType.transcription)
    fetch = await h.stages.next_started()
    fetch.complete(StageOutput(checkpoint={"file": "source.mp4"}))
    audio = await h.stages.next_started()
    assert (audio.name, audio.attempt) == ("audio", 1)
    core = await h.restart()  # the coordinator dies while the audio stage runs
    assert h.job(job_id).status == JobStatus.processing
    assert audio.signals == [("kill", 0.0)]

    assert await core.recover() == 1
    recovered = h.last_event(job_id, "recovered")
    assert recovered.message == "coordinator restarted; resuming after completed stages: fetch"
    resumed = await h.stages.next_started()
    assert (resumed.name, resumed.attempt) == ("audio", 2)
    assert resumed.inp.checkpoints == {"fetch": {"file": "source.mp4"}}
    resumed.complete()
    (await h.stages.next_started()).complete()  # transcribe
    done = await h.ended(job_id)
    assert done.status == JobStatus.completed and done.attempt == 2
    assert [s.name for s in h.stages.stages] == ["audio", "transcribe"]


async def test_recovery_holds_a_job_back_until_its_retry_is_due(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=1, retry_backoff_base_s=8.0)
    job_id = await h.submit()
    (await h.stages.next_started()).fail(WorkerCrashed("the node was lost"))
    failed = await h.ended(job_id)
    assert failed.status == JobStatus.queued
    assert failed.next_attempt_at == h.clock.now() + timedelta(seconds=8)
    h.clock.advance(3.0)
    core = await h.restart()
    assert await core.recover() == 1
    assert core.queue_status()["waiting_for_retry"] == [job_id]
    assert core.queue_status()["queued_order"] == []
    assert h.clock.pending() == [8.0]  # 5 s left of the 8 s backoff
    h.clock.advance(5.0)
    stage = await h.stages.next_started()
    assert (stage.name, stage.attempt, stage.started_at) == ("fetch", 2, 8.0)


async def test_manual_retry_keeps_the_completed_stages(make_harness: MakeHarness) -> None:
    h = make_harness(max_concurrent_jobs=1)
    job_id = await h.submit(max_retries=3)
    (await h.stages.next_started()).complete(StageOutput(checkpoint={"file": "source.mp4"}))
    (await h.stages.next_started()).fail(MediaError("the file has no audio track", code="no_audio"))
    failed = await h.ended(job_id)
    assert (failed.status, failed.error_code, failed.retry_count) == (
        JobStatus.failed,
        "no_audio",
        0,
    )
    queued = await h.core.retry(job_id)
    assert queued.status == JobStatus.queued and queued.error_code is None
    assert h.last_event(job_id, "queued").message == "manual retry; completed stages kept: fetch"
    again = await h.stages.next_started()
    assert (again.name, again.attempt) == ("audio", 2)
    with pytest.raises(JobConflict):
        await h.core.retry(job_id)  # it is running
    again.complete()
    assert (await h.ended(job_id)).status == JobStatus.completed


async def test_cancelling_a_queued_job_never_runs_it(make_harness: MakeHarness) -> None:
    h = make_harness(max_concurrent_jobs=1)
    blocker = await h.submit()
    queued = await h.submit()
    first = await h.stages.next_started()
    cancelled = await h.core.cancel(queued)
    assert cancelled.status == JobStatus.cancelled
    assert h.events(queued)[-1].message == "cancelled before it started"
    assert h.core.queue_status()["queued"] == 0
    with pytest.raises(JobConflict):
        await h.core.cancel(queued)
    first.complete()
    await h.run_to_completion(blocker)
    assert h.published.starts() == [blocker]


async def test_clearing_the_queue_cancels_queued_and_retry_waiting_jobs(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=1)
    retrying = await h.submit()
    (await h.stages.next_started()).fail(WorkerCrashed("the node was lost"))
    await h.ended(retrying)
    blocker = await h.submit()
    waiting = await h.submit()
    first = await h.stages.next_started()
    assert first.job_id == blocker
    assert await h.core.clear_queue() == 2
    assert (h.job(retrying).status, h.job(waiting).status) == (
        JobStatus.cancelled,
        JobStatus.cancelled,
    )
    # the retry's backoff timer is gone; the running job's timeout is all that is left
    assert h.clock.pending() == [h.config.job_timeout_s]
    assert h.core.queue_status()["queued"] == 0
    assert h.job(blocker).status == JobStatus.processing


async def test_a_long_queue_is_counted_whole_and_listed_by_its_head(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(max_concurrent_jobs=0)
    data = [
        JobCreate(
            youtube_url="https://media.example/v.mp4", job_type=JobType.audio_extraction, priority=p
        )
        for p in [2] * (STATUS_IDS + 20) + [7] * 30
    ]
    jobs = [job for job, _ in await asyncio.gather(*(h.core.submit(d) for d in data))]
    ids = [str(j.id) for j in jobs]
    status = h.core.queue_status()
    assert status["queued"] == STATUS_IDS + 50
    assert status["queued_count_by_priority"] == {"7": 30, "2": STATUS_IDS + 20}
    assert status["queued_order"] == ids[-30:] + ids[: STATUS_IDS - 30]
    assert status["queued_by_priority"] == {"7": ids[-30:], "2": ids[:STATUS_IDS]}
