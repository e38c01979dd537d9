"""The coordinator while its database is unreachable (actors/db_outage.py), on the fake
clock: a running job's writes are tried again with a bounded backoff and land once, the
job completes; a job whose writes outlast the bound is left `processing` and resumed once
the database is back; a dispatch, a due retry or a submission that finds the database down
is made good by rebuilding the queue from it; commands answer 503.

The database "goes down" by making the harness's repository raise what SQLAlchemy raises
while the server is stopped (`OperationalError`); `lose_answer` makes one write commit and
then raise, as when the server dies between the commit and its answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from actors.db_outage import RETRY_MAX_S, retry_delay_s
from actors.errors import DatabaseUnavailable
from actors.job_coordinator import JobCoordinatorActor
from pipeline.errors import WorkerCrashed
from storage.models import JobStatus
from tests.unit.coordinator_fakes import Harness, MakeHarness

REFUSED = 'connection to server on socket "/tmp/pg/.s.PGSQL.5432" failed: Connection refused'
_CALLS = (
    "transition",
    "get_job",
    "jobs_with_status",
    "count_by_status",
    "create_queued_jobs",
    "add_artifact",
    "delete_artifacts",
    "list_artifacts",
    "list_events",
)


def refused() -> OperationalError:
    return OperationalError("SELECT 1", None, Exception(REFUSED))


class Outage:
    """Switches the harness's database off and on (`down`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, h: Harness) -> None:
        self.down = False
        self.failed = 0  # calls refused so far
        self._lost: set[str] = set()
        for name in _CALLS:
            monkeypatch.setattr(h.repo, name, self._wrap(name, getattr(h.repo, name)))

    def lose_answer(self, call: str, event: str | None = None) -> None:
        """The next `call` (of `event`, for a transition) commits, then raises."""
        self._lost.add(f"{call}:{event}")

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.failed += 1
                raise refused()
            result = real(*args, **kwargs)
            key = f"{name}:{kwargs['event'].value if 'event' in kwargs else None}"
            if key in self._lost:
                self._lost.discard(key)
                raise refused()
            return result

        return call


async def wait_for(cond: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Until `cond()` (the database thread is real, so this waits on it, not on time)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "the coordinator did not get there"
        await asyncio.sleep(0.002)


def _soon(h: Harness) -> list[float]:
    """The delays on the timer short enough to be a retry's (not the job's timeout)."""
    now = h.clock.monotonic()
    return [due - now for due in h.clock.pending() if due - now <= RETRY_MAX_S + 1e-9]


async def next_try(h: Harness) -> float:
    """Wait until the coordinator waits out a retry's delay on its timer; run to its end.
    Returns the delay."""
    await wait_for(lambda: bool(_soon(h)))
    delay = _soon(h)[0]
    h.clock.advance(delay)
    return delay


async def refused_try(h: Harness, db: Outage) -> float:
    """`next_try` while the database is down: returns once that try has been refused (the
    coordinator then schedules the next one)."""
    assert db.down
    delay = await next_try(h)
    await wait_for(lambda: bool(_soon(h)))
    return delay


def stage_events(h: Harness, job_id: str, kind: str) -> list[str | None]:
    return [e.stage for e in h.events(job_id) if e.type == kind]


async def test_a_stage_ending_while_the_database_is_down_is_written_once_it_is_back(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness()
    db = Outage(monkeypatch, h)
    job_id = await h.submit()
    fetch = await h.stages.next_started(job_id)
    db.down = True
    fetch.complete()
    delays = [await refused_try(h, db) for _ in range(7)]
    assert delays == pytest.approx([retry_delay_s(n) for n in range(1, 8)])
    assert delays[0] < delays[1] < delays[2] and delays[-1] == RETRY_MAX_S
    db.down = False  # (before the next try: the test's reads go to the database too)
    assert job_id in h.core.running and h.job(job_id).status == JobStatus.processing
    await next_try(h)
    (await h.stages.next_started(job_id)).complete()
    job = await h.ended(job_id)
    assert job.status == JobStatus.completed and job.attempt == 1
    assert stage_events(h, job_id, "stage_started") == ["fetch", "audio"]
    assert stage_events(h, job_id, "stage_completed") == ["fetch", "audio"]
    assert h.event_types(job_id).count("completed") == 1
    assert "failed" not in h.event_types(job_id)
    assert [m["event"] for m in h.published.messages].count("stage_completed") == 2


@pytest.mark.parametrize("event", ["stage_completed", "completed"])
async def test_a_write_whose_answer_was_lost_is_not_written_again(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, event: str
) -> None:
    h = make_harness()
    db = Outage(monkeypatch, h)
    job_id = await h.submit()
    db.lose_answer("transition", event)
    (await h.stages.next_started(job_id)).complete()
    if event == "stage_completed":
        assert await next_try(h) == retry_delay_s(1)
    (await h.stages.next_started(job_id)).complete()
    if event == "completed":
        assert await next_try(h) == retry_delay_s(1)
    job = await h.ended(job_id)
    assert job.status == JobStatus.completed
    assert stage_events(h, job_id, "stage_completed") == ["fetch", "audio"]
    assert h.event_types(job_id).count("completed") == 1
    # published once, after its write was found
    published = [m for m in h.published.messages if m["job_id"] == job_id]
    assert [m["event"] for m in published].count(event) == (2 if event != "completed" else 1)
    seqs = [m["seq"] for m in published]
    assert seqs == sorted(set(seqs)) == [e.seq for e in h.events(job_id)]


async def test_a_job_whose_writes_outlast_the_bound_is_left_processing_then_resumed(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `db_outage_max_s` the runner gives the attempt up without writing anything and
    frees its slot; the next job's dispatch finds the database down too. Once it is back,
    the queue is rebuilt from it: the first job is resumed (attempt 2, from the first stage
    without a checkpoint), the second starts after it."""
    h = make_harness(db_outage_max_s=5.0, max_concurrent_jobs=1)
    db = Outage(monkeypatch, h)
    first = await h.submit()
    fetch = await h.stages.next_started(first)
    h.clock.advance(1.0)  # queued after the first, so that it runs after it
    second = await h.submit()
    db.down = True
    fetch.complete()
    waited = 0.0
    while True:
        await wait_for(lambda: bool(_soon(h)) or first not in h.core.running)
        if first not in h.core.running:
            break
        waited += await next_try(h)
    assert waited >= 5.0  # every try failed until the bound, then the attempt was given up
    # The watch finds the database still down; the dispatch of the second job on the freed
    # slot failed before (the database thread takes the calls in order).
    await refused_try(h, db)
    db.down = False
    assert h.job(first).status == JobStatus.processing  # nothing written: no failure
    assert h.job(second).status == JobStatus.queued
    assert first not in h.core.running and second not in h.core.running
    await next_try(h)  # and now back: the queue is rebuilt
    done = await h.run_to_completion(first)
    assert (done.status, done.attempt) == (JobStatus.completed, 2)
    assert h.event_types(first).count("recovered") == 1
    assert stage_events(h, first, "stage_started") == ["fetch", "fetch", "audio"]
    assert stage_events(h, first, "stage_completed") == ["fetch", "audio"]
    assert "failed" not in h.event_types(first)
    assert (await h.run_to_completion(second)).status == JobStatus.completed
    assert h.published.starts() == [first, first, second]


async def test_a_retry_falling_due_while_the_database_is_down_runs_once_it_is_back(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(retry_backoff_base_s=2.0)
    db = Outage(monkeypatch, h)
    job_id = await h.submit(max_retries=1)
    (await h.stages.next_started(job_id)).fail(WorkerCrashed("the worker died"))
    await h.ended(job_id)
    db.down = True
    assert await refused_try(h, db) == 2.0  # the backoff ends; its read of the job fails
    db.down = False
    await next_try(h)
    assert (await h.run_to_completion(job_id)).status == JobStatus.completed
    assert h.published.starts() == [job_id, job_id]


async def test_a_submission_on_a_down_database_fails_and_one_that_landed_is_queued(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness()
    db = Outage(monkeypatch, h)
    db.down = True
    with pytest.raises(OperationalError):
        await h.submit()
    db.down = False
    db.lose_answer("create_queued_jobs")
    with pytest.raises(OperationalError):
        await h.submit(key="landed")
    assert h.core.saw_outage(refused())
    await next_try(h)  # the database answers: the queue is rebuilt from it
    landed = h.repo.get_job_by_key("landed")
    assert landed is not None
    job = await h.run_to_completion(str(landed.id))
    assert job.status == JobStatus.completed
    assert len(h.repo.jobs_with_status(list(JobStatus))) == 1


def test_the_actor_answers_a_command_on_an_unreachable_database_with_a_503() -> None:
    seen: list[BaseException] = []

    def saw_outage(exc: BaseException) -> bool:
        seen.append(exc)
        return isinstance(exc, OperationalError)

    actor: Any = SimpleNamespace(_core=SimpleNamespace(saw_outage=saw_outage))
    with pytest.raises(DatabaseUnavailable) as err, JobCoordinatorActor._database(actor):
        raise refused()
    assert err.value.status_code == 503
    assert err.value.detail == f"the database is unavailable, try again shortly ({REFUSED})"
    with pytest.raises(ValueError), JobCoordinatorActor._database(actor):
        raise ValueError("not a database outage")
    assert len(seen) == 2
