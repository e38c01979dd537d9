"""Progress and cancellation shared by the ffmpeg runs of one cut, some of them parallel."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pipeline.types import CancelToken, ProgressCallback


class EitherCancel(CancelToken):
    """Cancelled when the stage is, or when `cancel()` is called on this one."""

    def __init__(self, parent: CancelToken) -> None:
        super().__init__()
        self._parent = parent

    @property
    def cancelled(self) -> bool:
        return self._parent.cancelled or super().cancelled


class CutProgress:
    """Spreads the 0..1 of each ffmpeg run over its share of the whole cut; runs may overlap
    (head and tail encode in parallel): the whole is the cost-weighted sum of every run."""

    def __init__(self, callback: ProgressCallback, costs: Sequence[float]) -> None:
        self.callback = callback
        self.costs = list(costs)
        self.total = sum(self.costs) or 1.0
        self.achieved: list[float] = []
        self.last = 0.0
        self._lock = threading.Lock()

    def step(self, label: str) -> ProgressCallback:
        cost = self.costs.pop(0) if self.costs else 0.0
        index = len(self.achieved)
        self.achieved.append(0.0)

        def report(fraction: float, message: str) -> None:
            with self._lock:
                self.achieved[index] = max(
                    self.achieved[index], cost * min(max(fraction, 0.0), 1.0)
                )
                value = min(sum(self.achieved) / self.total, 1.0)
                if value >= self.last:
                    self.last = value
                    self.callback(value, f"{label}: {message}")

        return report
