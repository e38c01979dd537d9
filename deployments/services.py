"""What an ingress replica talks to: its own read-only repository, the coordinator, the hub.

`CoordinatorClient` hides the actor's lifecycle: a call that finds the coordinator dead
recreates it (it recovers its queue from the database) and tries again, and a watchdog
keeps it alive between requests so queued work resumes without waiting for a client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import ray.exceptions as rex

from actors.job_coordinator import get_coordinator, get_hub
from config.settings import Settings
from storage.api_keys import ApiKeyRepository
from storage.artifacts import ArtifactStore
from storage.owners import JobOwners
from storage.repository import JobRepository
from storage.uploads import UploadRepository

log = logging.getLogger("vpa.ingress")

_GONE = (rex.ActorDiedError, rex.ActorUnavailableError, rex.GetTimeoutError)


class CoordinatorUnavailable(Exception):
    """The coordinator could not be reached even after recreating it (HTTP 503)."""


class CoordinatorClient:
    def __init__(
        self,
        settings: Settings,
        generation: float = 0.0,
        models: Any = None,
        attempts: int = 3,
        call_timeout_s: float = 60.0,
    ) -> None:
        self._settings = settings
        self._settings_json = settings.model_dump_json()
        self._generation = generation
        self._models = models
        self._attempts = attempts
        self._call_timeout_s = call_timeout_s
        self._handle: Any = None
        self.last_ok: bool = False

    def _get(self, refresh: bool = False) -> Any:
        if self._handle is None or refresh:
            self._handle = get_coordinator(self._settings, self._generation)
        return self._handle

    async def call(self, method: str, *args: Any) -> Any:
        """Call a coordinator method; exceptions it raises on purpose pass through."""
        last: Exception | None = None
        for attempt in range(self._attempts):
            handle = self._get(refresh=attempt > 0)
            try:
                ref = getattr(handle, method).remote(*args)
                result = await asyncio.wait_for(ref, self._call_timeout_s)
                self.last_ok = True
                return result
            except _GONE as exc:
                last = exc
                self.last_ok = False
                log.warning("coordinator unavailable (%s); recreating", type(exc).__name__)
                await asyncio.sleep(0.2 * (attempt + 1))
            except TimeoutError as exc:
                last = exc
                self.last_ok = False
        raise CoordinatorUnavailable(f"the job coordinator is unavailable: {last}")

    async def watchdog(self, interval_s: float = 1.0) -> None:
        """Keep the coordinator alive (recreated after a kill), started, and on the settings
        of the newest deployment."""
        while True:
            try:
                await self.call("adopt", self._settings_json, self._generation, self._models)
            except Exception:
                log.exception("coordinator watchdog: ping failed")
            await asyncio.sleep(interval_s)


@dataclass
class IngressServices:
    settings: Settings
    repo: JobRepository
    store: ArtifactStore
    coordinator: CoordinatorClient
    hub: Any
    replica_id: str

    def refresh_hub(self) -> Any:
        self.hub = get_hub(self.settings)
        return self.hub

    @functools.cached_property
    def keys(self) -> ApiKeyRepository:
        """The API keys, in the jobs' database."""
        return ApiKeyRepository(self.repo.engine)

    @functools.cached_property
    def uploads(self) -> UploadRepository:
        """The uploaded files' rows."""
        return UploadRepository(self.repo.engine)

    @functools.cached_property
    def owners(self) -> JobOwners:
        """Whose jobs are whose."""
        return JobOwners(self.repo.engine)
