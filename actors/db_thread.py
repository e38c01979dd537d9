"""`DbThread`: the coordinator's database calls, run one at a time off its event loop.

A SQLite or PostgreSQL call blocks; made on the coordinator's event loop it would stall every
other request (submits, progress reports, "should I stop?") for its duration. Every call of
the coordinator's repository goes through one dedicated thread instead:
- the loop stays free while a call runs;
- the calls run one at a time, in the order they were made, so the coordinator stays the
  single writer it was on the loop: a job's writes land in the order they were issued, and
  the callers resume (and publish) in that same order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class DbThread:
    """Runs blocking database calls in one worker thread, first in, first out."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpa-db")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in the database thread, awaited without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Let the calls already made finish; accept no more."""
        self._pool.shutdown(wait=False)
