"""`RayStageRunner`: the `StageRunner` the coordinator actor uses, one Ray task per stage."""

from __future__ import annotations

import logging
from typing import Any

import ray

from actors.stage_task import ServeModels, submit_stage
from config.logging import log_config
from config.settings import Settings
from pipeline.stages import StageInput, StageOutput
from storage.stores import storage_config

log = logging.getLogger("vpa.coordinator")


class RayStageHandle:
    """A stage task's object ref, as a `StageHandle`."""

    def __init__(self, ref: Any) -> None:
        self._ref = ref

    async def result(self) -> StageOutput:
        out: StageOutput = await self._ref
        return out

    def stop(self) -> None:
        # Nothing to send: the task's cancel watcher polls the coordinator's `should_stop`,
        # which answers True from the moment the cancel was requested.
        pass

    def interrupt(self) -> None:
        self._cancel(force=False)  # a KeyboardInterrupt in the task

    def kill(self) -> None:
        self._cancel(force=True)  # the worker process is killed

    def _cancel(self, force: bool) -> None:
        try:
            ray.cancel(self._ref, force=force)
        except Exception:  # already finished, or the worker is gone
            log.debug("cancel of a finished stage ignored", exc_info=True)


class RayStageRunner:
    """Submits stage tasks that report back to the calling coordinator actor.

    `settings` and `models` are replaced when the actor adopts a newer deployment's.
    """

    def __init__(self, settings: Settings, models: ServeModels | None = None) -> None:
        self.settings = settings
        self.models = models
        self._coordinator: Any = None

    def start(self, stage: str, inp: StageInput, attempt: int) -> RayStageHandle:
        if self._coordinator is None:
            self._coordinator = ray.get_runtime_context().current_actor
        ref = submit_stage(
            stage,
            inp,
            self._coordinator,
            attempt,
            storage_config(self.settings),
            log_config(self.settings),
            self.models,
            self.settings.stage_resources.get(stage),
        )
        return RayStageHandle(ref)
