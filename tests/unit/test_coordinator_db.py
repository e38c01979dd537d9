"""The coordinator's database work runs off its event loop, in order, and submissions are
written in batches: each submission as one transaction (the job with its created and
queued events), those that arrive while a batch is written together in the next one.

A gate (a `threading.Event`) holds the database thread inside a write, so the tests see
what the loop does meanwhile without relying on timing. The gate gives up after
`GATE_LIMIT_S` only so that a coordinator that (wrongly) writes on its loop fails the test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from storage.models import JobType
from storage.schemas import JobCreate
from tests.unit.coordinator_fakes import Harness, MakeHarness

GATE_LIMIT_S = 30.0


class Gate:
    """Wraps a repository method: each call records its arguments, and the first call waits
    (in the database thread) until the test opens the gate."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method
        self.entered = threading.Event()
        self._open = threading.Event()
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args)
        self.entered.set()
        if not self._open.wait(GATE_LIMIT_S):
            raise TimeoutError("the gate was never opened: the loop was blocked")
        return self._method(*args, **kwargs)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, GATE_LIMIT_S)

    def open(self) -> None:
        self._open.set()


def gate(h: Harness, monkeypatch: pytest.MonkeyPatch, name: str) -> Gate:
    g = Gate(getattr(h.repo, name))
    monkeypatch.setattr(h.repo, name, g)
    return g


def job_data(key: str | None = None, priority: int = 5) -> JobCreate:
    return JobCreate(
        youtube_url="https://media.example/v.mp4",
        job_type=JobType.audio_extraction,
        priority=priority,
        idempotency_key=key,
    )


async def test_the_loop_answers_while_a_submission_is_being_written(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(max_concurrent_jobs=1)
    blocker = await h.submit()
    stage = await h.stages.next_started(blocker)
    writes = gate(h, monkeypatch, "create_queued_jobs")
    submitting = asyncio.ensure_future(h.submit())
    await writes.wait_entered()  # the database thread is held inside the write
    # the loop is free: a progress report and a stop question are answered meanwhile
    h.core.report_progress(blocker, 1, "fetch", 0.5, "downloading 50%")
    assert not h.core.should_stop(blocker, 1)
    assert h.core.queue_status()["queued"] == 0 and not submitting.done()
    writes.open()
    job_id = await submitting
    assert h.core.queue_status()["queued_order"] == [job_id]
    await h.progress_flushed()
    assert h.job(blocker).progress == 37.5  # written after the submission, in order
    stage.complete()
    await h.run_to_completion(blocker)
    assert (await h.run_to_completion(job_id)).status == "completed"


async def test_submissions_that_arrive_during_a_write_share_the_next_transaction(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(max_concurrent_jobs=0)
    writes = gate(h, monkeypatch, "create_queued_jobs")
    first = asyncio.ensure_future(h.core.submit(job_data(priority=1)))
    await writes.wait_entered()
    later = [asyncio.ensure_future(h.core.submit(job_data(priority=p))) for p in (5, 9, 5)]
    duplicate = asyncio.ensure_future(h.core.submit(job_data(key="k", priority=3)))
    again = asyncio.ensure_future(h.core.submit(job_data(key="k", priority=3)))
    writes.open()
    (job1, _), *rest = await asyncio.gather(first, *later, duplicate, again)
    assert [len(args[0]) for args in writes.calls] == [1, 5]  # two transactions
    (a, _), (b, _), (c, _), (keyed, created), (same, created_again) = rest
    assert (created, created_again) == (True, False) and same.id == keyed.id
    order = [str(j.id) for j in (b, a, c, keyed, job1)]  # priority, then arrival
    assert h.core.queue_status()["queued_order"] == order
    for job_id in order:
        assert h.event_types(job_id) == ["created", "queued"]
        published = [m for m in h.published.messages if m["job_id"] == job_id]
        assert [(m["seq"], m["event"], m["data"]["status"]) for m in published] == [
            (1, "created", "pending"),
            (2, "queued", "queued"),
        ]
