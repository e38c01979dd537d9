"""How often an API key may create jobs: RATE_LIMIT_PER_MINUTE, or the key's own limit.

A moving window per key (the `limits` library, which Flask-Limiter and SlowAPI are built
on), held in the coordinator's memory: the coordinator takes every submission from every
Ingress replica, so the limit holds for the whole service. A coordinator restart forgets
the window (a key may then create its limit again at once). The other limit, jobs active
at once, is counted in the database in the submission's own transaction
(storage/submissions.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from actors.errors import TooManyRequests


class CreationRate:
    """Job creations per key and minute."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._clock = clock  # the storage's own clock: wall time, as `limits` keeps it

    def take(self, owner: str, per_minute: int | None) -> None:
        """Count one creation for `owner`, or raise `TooManyRequests` (with how long until
        the window has room) if it already made `per_minute` in the last minute."""
        if per_minute is None:
            return
        item = RateLimitItemPerMinute(per_minute)
        if self._limiter.hit(item, owner):
            return
        reset_at, _ = self._limiter.get_window_stats(item, owner)
        wait_s = max(math.ceil(reset_at - self._clock()), 1)
        raise TooManyRequests(
            f"this API key may create {per_minute} job(s) a minute (RATE_LIMIT_PER_MINUTE or "
            f"the key's own limit); try again in {wait_s} s",
            retry_after_s=wait_s,
        )
