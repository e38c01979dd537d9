"""What the coordinator's unit tests drive it with: a clock that moves only when the test
advances it, a stage runner whose stages the test ends at will, and a publisher that records
every update. Nothing here sleeps; a test waits on what the coordinator does (a stage
started, a signal sent to a stage, an attempt ended), never on time passing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from actors.coordinator_config import CoordinatorConfig
from actors.coordinator_core import CoordinatorCore
from pipeline.errors import StageCancelled
from pipeline.stages import StageInput, StageOutput
from storage.db import create_db_engine, init_db
from storage.local_store import LocalArtifactStore
from storage.models import Job, JobEvent, JobType
from storage.repository import JobRepository
from storage.schemas import JobCreate

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(order=True)
class FakeTimerHandle:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Monotonic seconds from 0, the wall clock from `EPOCH`, and a timer on both; time
    moves only in `advance`, which runs the callbacks that fall due, in order."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[FakeTimerHandle] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> FakeTimerHandle:
        handle = FakeTimerHandle(self.t + delay_s, next(self._seq), callback)
        heapq.heappush(self._timers, handle)
        return handle

    def pending(self) -> list[float]:
        """When the live timers fall due, soonest first."""
        return sorted(h.due for h in self._timers if not h.cancelled)

    def advance(self, seconds: float) -> None:
        target = self.t + seconds
        while self._timers and self._timers[0].due <= target:
            handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self.t = handle.due
                handle.callback()
        self.t = target

    def cancel_all(self) -> None:
        """Drop every timer (their owner is gone)."""
        for handle in self._timers:
            handle.cancelled = True


class Killed(Exception):
    """What awaiting a killed stage raises (Ray raises a worker or cancel error)."""


class Interrupted(Exception):
    """What awaiting an interrupted stage raises (Ray: TaskCancelledError)."""


class FakeStage:
    """One stage attempt. The test ends it (`complete`, `fail`); a cancel signal ends it
    only from the step named by `ends_on` on ("stop", "interrupt" or "kill")."""

    def __init__(self, name: str, inp: StageInput, attempt: int, clock: FakeClock) -> None:
        self.name = name
        self.inp = inp
        self.attempt = attempt
        self.job_id = inp.job_id
        self.started_at = clock.monotonic()
        self.ends_on = "stop"
        self.signals: list[tuple[str, float]] = []  # (signal, clock time)
        self.received = {s: asyncio.Event() for s in ("stop", "interrupt", "kill")}
        self._clock = clock
        self._future: asyncio.Future[StageOutput] = asyncio.get_running_loop().create_future()
        # how a stage the coordinator stopped waiting for ended is nobody's business
        self._future.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def result(self) -> StageOutput:
        return await asyncio.shield(self._future)

    def complete(self, output: StageOutput | None = None) -> None:
        self._future.set_result(output or StageOutput(checkpoint={"file": f"{self.name}.out"}))

    def fail(self, exc: BaseException) -> None:
        self._future.set_exception(exc)

    def stop(self) -> None:
        self._signal("stop", StageCancelled("the job was cancelled"))

    def interrupt(self) -> None:
        self._signal("interrupt", Interrupted())

    def kill(self) -> None:
        self._signal("kill", Killed())

    def _signal(self, what: str, ending: BaseException) -> None:
        self.signals.append((what, self._clock.monotonic()))
        self.received[what].set()
        order = ("stop", "interrupt", "kill")
        if order.index(what) >= order.index(self.ends_on) and not self._future.done():
            self._future.set_exception(ending)


class FakeStageRunner:
    """Records every stage started and hands each to the test once (`next_started`)."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.stages: list[FakeStage] = []
        self._unclaimed: list[FakeStage] = []
        self._changed = asyncio.Event()

    def start(self, stage: str, inp: StageInput, attempt: int) -> FakeStage:
        fake = FakeStage(stage, inp, attempt, self._clock)
        self.stages.append(fake)
        self._unclaimed.append(fake)
        self._changed.set()
        return fake

    async def next_started(self, job_id: str | None = None) -> FakeStage:
        """The earliest stage not yet handed out (of `job_id`'s, if given), once started."""
        while True:
            for fake in self._unclaimed:
                if job_id is None or fake.job_id == job_id:
                    self._unclaimed.remove(fake)
                    return fake
            self._changed.clear()
            await self._changed.wait()

    async def another_started(self) -> None:
        """Wait for the next stage to start."""
        self._changed.clear()
        await self._changed.wait()

    def none_waiting(self) -> bool:
        """Whether every stage started so far has been handed to the test."""
        return not self._unclaimed


class Published:
    """The publisher: every update message, in the order the coordinator published them."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, job_id: str, seq: int, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def starts(self) -> list[str]:
        """The ids of the jobs whose attempts started, in order."""
        return [m["job_id"] for m in self.messages if m["event"] == "started"]

    def most_running(self) -> int:
        """The most attempts that were running at once."""
        running: set[str] = set()
        most = 0
        for m in self.messages:
            if m["event"] == "started":
                running.add(m["job_id"])
                most = max(most, len(running))
            elif m["event"] in {"completed", "failed", "cancelled", "retry_scheduled"}:
                running.discard(m["job_id"])
        return most


@dataclass
class Harness:
    """One coordinator on a SQLite database in a temporary directory, with the fakes."""

    tmp_path: Path
    config: CoordinatorConfig
    clock: FakeClock = field(default_factory=FakeClock)
    cores: list[CoordinatorCore] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.repo = JobRepository(create_db_engine(f"sqlite:///{self.tmp_path / 'vpa.db'}"))
        init_db(self.repo.engine)
        self.store = LocalArtifactStore(self.tmp_path / "store")
        self.core = self._new_core()

    def _new_core(self) -> CoordinatorCore:
        self.stages = FakeStageRunner(self.clock)
        self.published = Published()
        core = CoordinatorCore(
            repo=self.repo,
            store=self.store,
            config=self.config,
            stages=self.stages,
            publish=self.published,
            now=self.clock.now,
            clock=self.clock.monotonic,
            timer=self.clock,
        )
        self.cores.append(core)
        return core

    async def restart(self) -> CoordinatorCore:
        """The coordinator dies (its attempts and timers with it, the database untouched)
        and a new one starts on the same database; `recover` is left to the test."""
        await self.crash()
        self.core = self._new_core()
        return self.core

    async def crash(self) -> None:
        self.clock.cancel_all()
        for core in self.cores:
            await core.shutdown()  # an ended attempt's slot starts nothing new
            tasks = [r.task for r in core.running.values() if r.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def submit(
        self,
        priority: int = 5,
        *,
        key: str | None = None,
        max_retries: int | None = None,
        job_type: JobType = JobType.audio_extraction,
    ) -> str:
        job, _ = await self.core.submit(
            JobCreate(
                youtube_url="https://media.example/video.mp4",
                job_type=job_type,
                priority=priority,
                max_retries=max_retries,
                idempotency_key=key,
            )
        )
        return str(job.id)

    async def progress_flushed(self) -> None:
        """Wait until the progress reports written so far are in the database."""
        await self.core._runner.progress_flushed()

    def job(self, job_id: str) -> Job:
        job = self.repo.get_job(UUID(job_id))
        assert job is not None
        return job

    def events(self, job_id: str) -> list[JobEvent]:
        return self.repo.list_events(UUID(job_id))

    def event_types(self, job_id: str) -> list[str]:
        return [str(e.type) for e in self.events(job_id)]

    def last_event(self, job_id: str, event_type: str) -> JobEvent:
        return [e for e in self.events(job_id) if e.type == event_type][-1]

    async def ended(self, job_id: str) -> Job:
        """Wait for the job's running attempt to end; the job as it then is."""
        task = self.core.running[job_id].task
        assert task is not None
        await task
        return self.job(job_id)

    async def run_to_completion(self, job_id: str) -> Job:
        """Complete each stage of the job's attempt (started, or to be started: a job is
        running before its first stage starts) as it starts."""
        while job_id not in self.core.running:
            await self.stages.another_started()
        task = self.core.running[job_id].task
        assert task is not None
        while not task.done():
            stage = await self.stages.next_started(job_id)
            stage.complete()
            if stage.name == self.core.running[job_id].chain[-1]:
                break
        return await self.ended(job_id)


MakeHarness = Callable[..., Harness]
