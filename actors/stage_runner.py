"""The seam between the coordinator and wherever stages run: `StageRunner` and `StageHandle`.

`JobRunner` (actors/job_runner.py) starts each stage attempt through a `StageRunner` and
holds the `StageHandle` it gets back while the stage runs. In production that is
`RayStageRunner` (actors/ray_stage_runner.py): a Ray task per stage. Unit tests hand in a
fake whose stages they complete, fail or leave hanging at will.

While it runs, a stage talks back to the coordinator through two calls (the Ray stage task
makes them through the actor): `report_progress(job_id, attempt, stage, fraction, message)`
to stream its progress, and `should_stop(job_id, attempt)` to learn that it should stop.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from pipeline.stages import StageInput, StageOutput


class StageHandle(Protocol):
    """One stage attempt in flight. A cancel escalates: `stop`, then `interrupt`, then `kill`,
    each after the one before was given its grace period."""

    def result(self) -> Awaitable[StageOutput]:
        """The stage's output; raises whatever ended the stage instead."""
        ...

    def stop(self) -> None:
        """Ask the stage to stop by itself, cleaning up (the graceful cancel)."""
        ...

    def interrupt(self) -> None:
        """Interrupt the stage's work where it stands (it did not stop when asked)."""
        ...

    def kill(self) -> None:
        """End the process running the stage (it survived the interrupt, or timed out)."""
        ...


class StageRunner(Protocol):
    def start(self, stage: str, inp: StageInput, attempt: int) -> StageHandle:
        """Start `stage` of attempt number `attempt` of job `inp.job_id`; never blocks."""
        ...
