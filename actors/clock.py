"""Time as the coordinator sees it: a clock it reads and a timer it schedules on.

Both are handed in (`CoordinatorCore`, `JobRunner`), so the retry backoff, the job timeout,
the cancel grace periods and the progress throttle run on the event loop's time in
production and on a fake clock, advanced by the test, in unit tests: nothing there sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

Clock = Callable[[], float]
"""Monotonic seconds (`time.monotonic` in production)."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Timer(Protocol):
    """Runs a callback after a delay measured on the same clock the coordinator reads."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle: ...


class LoopTimer:
    """The running event loop's timer."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay_s, callback)


def _expiry(timer: Timer, delay_s: float) -> tuple[asyncio.Future[None], TimerHandle]:
    """A future that `timer` completes after `delay_s`, and the handle that cancels that."""
    expired: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expire() -> None:
        if not expired.done():
            expired.set_result(None)

    return expired, timer.call_later(delay_s, expire)


async def sleep_on(timer: Timer, delay_s: float) -> None:
    """Wait `delay_s` on `timer` (the event loop's, or a test's fake one)."""
    expired, handle = _expiry(timer, delay_s)
    try:
        await expired
    finally:
        handle.cancel()


async def finished_within(fut: asyncio.Future[Any], timeout_s: float, timer: Timer) -> bool:
    """Wait until `fut` is done or `timeout_s` has passed on `timer`; True if it is done.

    Unlike `asyncio.wait_for`, `fut` is never cancelled: the caller decides what a timeout
    means. A timeout of zero or less only looks.
    """
    if fut.done() or timeout_s <= 0:
        return fut.done()
    expired, handle = _expiry(timer, timeout_s)
    try:
        await asyncio.wait({fut, expired}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        handle.cancel()
        expired.cancel()
    return fut.done()
