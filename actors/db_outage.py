"""The coordinator while its database is unreachable (stopped, restarting, failed over).

Two tools, both on the coordinator's clock and timer (a fake one in unit tests):
- `OutageRetry`: a write that a job in flight cannot do without (a stage's start or
  completion, the job's end) is tried again with a bounded backoff (`RETRY_FIRST_S`,
  doubling, at most `RETRY_MAX_S` apart) for up to `db_outage_max_s` of the coordinator's
  settings. Past that it raises `DatabaseDown`: the runner then gives the job up without
  writing anything, leaving it `processing` in the database for `OutageWatch` to resume.
  A retried write first checks whether the failed try reached the database after all (its
  commit landed but the answer was lost), so no event is ever written twice.
- `OutageWatch`: once anything saw the database unreachable (a dispatch, a due retry, a
  submission, a runner that gave a job up), it waits for the database to answer again and
  then rebuilds the queue from it (`CoordinatorCore.recover`, as after a restart): jobs
  queued meanwhile are queued again and jobs left `processing` are resumed after their
  completed stages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from actors.clock import Clock, Timer, sleep_on
from storage.db import database_unreachable, unreachable_reason

T = TypeVar("T")
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 2.0
log = logging.getLogger("vpa.coordinator")


class DatabaseDown(Exception):
    """The database stayed unreachable for longer than the coordinator waits for it."""


def retry_delay_s(tries: int) -> float:
    """The wait after the `tries`-th failed try (1-based)."""
    return float(min(RETRY_FIRST_S * 2 ** max(tries - 1, 0), RETRY_MAX_S))


class OutageRetry:
    """Runs a database call again while the database is unreachable, for at most
    `max_s()` seconds on `clock`; other errors pass through at once."""

    def __init__(self, timer: Timer, clock: Clock, max_s: Callable[[], float]) -> None:
        self._timer = timer
        self._clock = clock
        self._max_s = max_s

    async def __call__(
        self,
        call: Callable[[], Awaitable[T]],
        what: str,
        landed: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """`await call()` until it succeeds. `landed()`, asked before each new try, answers
        the result of a failed try that reached the database after all (None if none did)."""
        tries = 0
        first_failure = 0.0
        while True:
            try:
                if tries and landed is not None:
                    found = await landed()
                    if found is not None:
                        return found
                return await call()
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                tries += 1
                if tries == 1:
                    first_failure = self._clock()
                    log.warning(
                        "database unreachable (%s); retrying %s", unreachable_reason(exc), what
                    )
                waited = self._clock() - first_failure
                if waited >= self._max_s():
                    raise DatabaseDown(
                        f"the database was unreachable for {waited:.0f} s while writing "
                        f"{what}: {unreachable_reason(exc)}"
                    ) from exc
            await sleep_on(self._timer, retry_delay_s(tries))


class OutageWatch:
    """After `down()`: probes the database (`probe`, in the database thread via `run`)
    with the retry backoff until it answers, then calls `on_back` (which may find it down
    again: then the watch goes on)."""

    def __init__(
        self,
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
        probe: Callable[[], Any],
        on_back: Callable[[], Awaitable[Any]],
        timer: Timer,
    ) -> None:
        self._run = run
        self._probe = probe
        self._on_back = on_back
        self._timer = timer
        self._task: asyncio.Task[None] | None = None

    @property
    def watching(self) -> bool:
        return self._task is not None and not self._task.done()

    def saw(self, exc: BaseException) -> bool:
        """Whether `exc` says the database is unreachable; if so, watch for its return."""
        if database_unreachable(exc):
            self.down()
            return True
        return False

    def down(self) -> None:
        """The database was found unreachable: watch for its return (once at a time)."""
        if not self.watching:
            log.warning("database unreachable; the queue is rebuilt from it once it is back")
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        tries = 0
        while True:
            tries += 1
            await sleep_on(self._timer, retry_delay_s(tries))
            try:
                await self._run(self._probe)
                await self._on_back()
            except Exception as exc:
                if not database_unreachable(exc):
                    log.exception("rebuilding the queue after a database outage failed")
                    return
                continue
            log.info("database reachable again; queue rebuilt from it")
            return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
