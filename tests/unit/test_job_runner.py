"""`JobRunner` without Ray, through the coordinator that owns it: how an attempt ends (retry
with backoff, failure, timeout, cancel) and how its progress is persisted, on a fake clock
that only the test moves."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from actors.coordinator_config import CoordinatorConfig
from actors.db_outage import OutageRetry
from actors.db_thread import DbThread
from actors.job_runner import INTERRUPT_GRACE_S, JobRunner
from actors.running_job import JobWriter, RunningJob
from pipeline.errors import DownloadError, MediaError, PipelineError, WorkerCrashed
from storage.models import EventType, JobStatus, JobType
from storage.schemas import JobCreate
from tests.unit.coordinator_fakes import FakeStageRunner, Harness, MakeHarness


@pytest.mark.parametrize(
    ("base_s", "max_s", "retries", "delays"),
    [(2.0, 300.0, 3, [2.0, 4.0, 8.0]), (2.0, 5.0, 4, [2.0, 4.0, 5.0, 5.0])],
    ids=["doubling", "capped"],
)
@pytest.mark.parametrize(
    "error",
    [
        WorkerCrashed("the worker died"),
        DownloadError("HTTP 503", code="network_error", retryable=True),
    ],
    ids=["worker_crashed", "network_error"],
)
async def test_retryable_failures_back_off_exponentially_then_fail(
    make_harness: MakeHarness,
    base_s: float,
    max_s: float,
    retries: int,
    delays: list[float],
    error: PipelineError,
) -> None:
    h = make_harness(retry_backoff_base_s=base_s, retry_backoff_max_s=max_s)
    job_id = await h.submit(max_retries=retries)
    starts: list[float] = []
    for number, delay in enumerate(delays, start=1):
        stage = await h.stages.next_started(job_id)
        starts.append(stage.started_at)
        stage.fail(error)
        job = await h.ended(job_id)
        assert (job.status, job.retry_count, job.error_code) == (
            JobStatus.queued,
            number,
            error.code,
        )
        assert job.next_attempt_at == h.clock.now() + timedelta(seconds=delay)
        retry = h.last_event(job_id, "retry_scheduled")
        assert retry.data == {
            "status": "queued",
            "progress": 0.0,
            "retry": number,
            "delay_s": delay,
            "error_code": error.code,
        }
        assert h.clock.pending() == [h.clock.monotonic() + delay]
        h.clock.advance(delay / 2)
        assert h.stages.none_waiting()
        assert h.core.queue_status()["waiting_for_retry"] == [job_id]
        h.clock.advance(delay / 2)
    last = await h.stages.next_started(job_id)
    starts.append(last.started_at)
    last.fail(error)
    job = await h.ended(job_id)
    assert (job.status, job.retry_count, job.error_code) == (JobStatus.failed, retries, error.code)
    # each attempt started exactly its backoff after the failure before it (failures are
    # immediate here, so after the start before it)
    assert [b - a for a, b in itertools.pairwise(starts)] == delays
    assert [s.attempt for s in h.stages.stages] == list(range(1, retries + 2))


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (MediaError("not a video file"), "invalid_media", "not a video file"),
        (RuntimeError("boom"), "internal_error", "internal error in stage: RuntimeError: boom"),
    ],
    ids=["pipeline_error", "unexpected_exception"],
)
async def test_a_non_retryable_failure_fails_the_job_at_once_with_its_reason(
    make_harness: MakeHarness, error: Exception, code: str, message: str
) -> None:
    h = make_harness()
    job_id = await h.submit(max_retries=3)
    (await h.stages.next_started(job_id)).complete()
    (await h.stages.next_started(job_id)).fail(error)
    job = await h.ended(job_id)
    assert (job.status, job.error_code, job.error_message, job.retry_count) == (
        JobStatus.failed,
        code,
        message,
        0,
    )
    failed = h.last_event(job_id, "failed")
    assert (failed.stage, failed.message) == ("audio", message)
    assert failed.data is not None and failed.data["retryable"] is False
    assert "retry_scheduled" not in h.event_types(job_id)
    assert h.clock.pending() == [] and h.core.queue_status()["queued"] == 0


async def test_a_stage_running_at_the_job_timeout_is_killed_and_the_job_fails(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(job_timeout_s=10.0)
    job_id = await h.submit(max_retries=3)
    fetch = await h.stages.next_started(job_id)
    h.clock.advance(6.0)
    fetch.complete()
    audio = await h.stages.next_started(job_id)
    assert audio.started_at == 6.0
    # the timeout counts from the attempt's start, not the stage's
    assert h.clock.pending() == [10.0]
    h.clock.advance(4.0)
    job = await h.ended(job_id)
    assert audio.signals == [("kill", 10.0)]
    assert fetch.signals == []
    assert (job.status, job.error_code, job.retry_count) == (JobStatus.failed, "timeout", 0)
    assert job.error_message == "the job ran past JOB_TIMEOUT (10 s) during the audio stage"
    assert h.last_event(job_id, "failed").stage == "audio"


@pytest.mark.parametrize(
    ("ends_on", "signals"),
    [
        ("stop", [("stop", 0.0)]),
        ("interrupt", [("stop", 0.0), ("interrupt", 3.0)]),
        ("kill", [("stop", 0.0), ("interrupt", 3.0), ("kill", 3.0 + INTERRUPT_GRACE_S)]),
    ],
)
async def test_cancel_asks_the_stage_to_stop_then_interrupts_then_kills_it(
    make_harness: MakeHarness, ends_on: str, signals: list[tuple[str, float]]
) -> None:
    h = make_harness(cancel_grace_s=3.0)
    job_id = await h.submit()
    stage = await h.stages.next_started(job_id)
    stage.ends_on = ends_on
    cancelling = asyncio.ensure_future(h.core.cancel(job_id))
    await stage.received["stop"].wait()
    assert h.core.should_stop(job_id, 1)
    if ends_on != "stop":
        assert h.clock.pending() == [3.0, h.config.job_timeout_s]
        h.clock.advance(3.0)
        await stage.received["interrupt"].wait()
    if ends_on == "kill":
        assert h.clock.pending() == [3.0 + INTERRUPT_GRACE_S, h.config.job_timeout_s]
        h.clock.advance(INTERRUPT_GRACE_S)
        await stage.received["kill"].wait()
    job = await cancelling
    assert stage.signals == signals
    assert job.status == JobStatus.cancelled
    cancelled = h.last_event(job_id, "cancelled")
    assert (cancelled.stage, cancelled.message) == ("fetch", "cancelled during fetch")
    assert h.stages.none_waiting() and not h.core.running
    assert h.clock.pending() == []


async def test_a_stage_that_finishes_after_the_cancel_request_still_cancels_the_job(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(cancel_grace_s=3.0)
    job_id = await h.submit()
    stage = await h.stages.next_started(job_id)
    stage.ends_on = "kill"
    cancelling = asyncio.ensure_future(h.core.cancel(job_id))
    await stage.received["stop"].wait()
    stage.complete()  # it was about to finish anyway
    job = await cancelling
    assert job.status == JobStatus.cancelled and stage.signals == [("stop", 0.0)]
    assert "stage_completed" not in h.event_types(job_id)


async def test_progress_is_persisted_at_most_once_per_interval(make_harness: MakeHarness) -> None:
    h = make_harness(progress_persist_interval_s=0.5)
    job_id = await h.submit()
    stage = await h.stages.next_started(job_id)
    h.core.report_progress(job_id, 1, "fetch", 0.1, "downloading 10%")
    await h.progress_flushed()
    assert h.job(job_id).progress == 7.5  # fetch weighs 3 of the chain's 4
    h.clock.advance(0.1)
    h.core.report_progress(job_id, 1, "fetch", 0.2, "downloading 20%")
    h.core.report_progress(job_id, 1, "fetch", 0.3, "downloading 30%")
    # stale reports: another attempt, another stage
    h.core.report_progress(job_id, 0, "fetch", 0.9, "stale attempt")
    h.core.report_progress(job_id, 1, "audio", 0.9, "not the running stage")
    progress = [e for e in h.events(job_id) if e.type == "progress"]
    assert [e.message for e in progress] == ["downloading 10%"]
    assert h.clock.pending() == [0.5, h.config.job_timeout_s]
    h.clock.advance(0.4)
    await h.progress_flushed()
    progress = [e for e in h.events(job_id) if e.type == "progress"]
    assert [e.message for e in progress] == ["downloading 10%", "downloading 30%"]
    assert progress[-1].data is not None and progress[-1].data["stage_fraction"] == 0.3
    assert h.job(job_id).progress == 22.5
    assert h.core.workers()[0]["last_heartbeat"] == "2026-01-01T00:00:00.100000Z"
    stage.complete()
    await h.stages.next_started(job_id)
    assert not h.core.should_stop(job_id, 1)
    assert h.core.should_stop(job_id, 0)  # a stale attempt's task stops


async def test_a_report_not_yet_written_when_its_stage_ends_is_dropped(
    make_harness: MakeHarness,
) -> None:
    """A throttled report of a finished stage never lands on the next one: the job's
    progress only goes up (a late write once showed 100 % during audio, then 75 %)."""
    h = make_harness(progress_persist_interval_s=0.5)
    job_id = await h.submit()
    fetch = await h.stages.next_started(job_id)
    h.core.report_progress(job_id, 1, "fetch", 0.5, "downloading 50%")
    h.clock.advance(0.1)
    h.core.report_progress(job_id, 1, "fetch", 0.99, "downloading 99%")  # held back
    assert h.clock.pending() == [0.5, h.config.job_timeout_s]
    fetch.complete()
    audio = await h.stages.next_started(job_id)
    assert h.clock.pending() == [h.config.job_timeout_s]  # the flush timer is gone
    h.clock.advance(1.0)
    await h.progress_flushed()
    progress = [e.message for e in h.events(job_id) if e.type == "progress"]
    assert progress == ["downloading 50%"]
    assert h.job(job_id).progress == 75.0  # fetch done (3 of 4), audio at 0
    audio.complete()
    job = await h.ended(job_id)
    assert (job.status, job.progress) == ("completed", 100.0)


async def test_the_runner_alone_reports_a_retry_and_gives_its_slot_back(tmp_path: Path) -> None:
    h = Harness(tmp_path, CoordinatorConfig(retry_backoff_base_s=2.0))
    clock = h.clock  # of the harness, only its database, store and clock are used here
    stages = FakeStageRunner(clock)
    retries: list[tuple[str, float]] = []
    finished: list[RunningJob] = []

    retry = OutageRetry(clock, clock.monotonic, lambda: 300.0)
    write = JobWriter(h.repo, DbThread(), clock.now, lambda *_: None, retry)  # nobody listens

    runner = JobRunner(
        h.repo,
        h.store,
        h.config,
        stages,
        write,
        clock.now,
        on_retry=lambda job_id, delay_s: retries.append((job_id, delay_s)),
        on_finished=finished.append,
        clock=clock.monotonic,
        timer=clock,
    )
    created, _ = h.repo.create_job(
        JobCreate(youtube_url="https://media.example/v.mp4", job_type=JobType.audio_extraction),
        default_max_retries=3,
        now=clock.now(),
    )
    job_id = str(created.id)
    await write(job_id, EventType.queued, {"status": JobStatus.queued})
    job = await write(job_id, EventType.started, {"status": JobStatus.processing, "attempt": 1})
    assert job is not None
    run = RunningJob(
        job_id=job_id,
        slot=0,
        attempt=1,
        chain=("fetch", "audio"),
        done=set(),
        started_at=clock.monotonic(),
        last_heartbeat=clock.now(),
    )
    runner.start(run, job, freed_at=clock.monotonic())
    assert runner.running == {job_id: run}
    (await stages.next_started(job_id)).fail(WorkerCrashed("the worker died"))
    assert run.task is not None
    await run.task
    assert retries == [(job_id, 2.0)] and finished == [run] and runner.running == {}
    assert runner.dispatch_overhead_s == [0.0]
    assert h.job(job_id).status == JobStatus.queued
