"""The two things every stage is handed besides its inputs: a progress callback and a
cancel token. Plain Python, no Ray."""

from __future__ import annotations

import threading
from collections.abc import Callable

# progress(fraction in [0, 1], human message). Stages call it often; callers throttle.
ProgressCallback = Callable[[float, str], None]


def share_of(progress: ProgressCallback, low: float, high: float) -> ProgressCallback:
    """`progress` for a part of the work that spans [low, high] of the whole."""
    return lambda fraction, message: progress(low + (high - low) * fraction, message)


class CancelToken:
    """Set by the runner when the job is cancelled; stages poll it between chunks of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
