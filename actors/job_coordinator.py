"""The JobCoordinator actor: a thin Ray shell around `CoordinatorCore`.

It is a named, detached actor (one per Ray namespace), so every ingress replica reaches the
same one and it outlives a redeploy. Restarted by Ray after a crash, or recreated by the
ingress watchdog after `ray.kill`, it rebuilds its queue from the database on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import ray

from actors import metrics
from actors.coordinator_config import CoordinatorConfig, WebhookConfig, auto_concurrency
from actors.coordinator_core import CoordinatorCore
from actors.errors import DatabaseUnavailable, unavailable_detail
from actors.key_limits import CreationRate
from actors.progress import ProgressHub, PublishQueue
from actors.ray_stage_runner import RayStageRunner
from actors.stage_task import ServeModels
from config.logging import log_config, setup_logging
from config.settings import Settings
from pipeline.options import FetchOptions
from storage.db import create_db_engine, init_db
from storage.models import ADMIN_OWNER
from storage.repository import JobRepository
from storage.schemas import JobCreate, JobPublic
from storage.stores import open_store, storage_config

COORDINATOR_PREFIX = "vpa-coordinator-"
HUB_NAME = "vpa-progress-hub"
GAUGES_INTERVAL_S = 5.0  # the queue gauges, set again this often (Ray drops stale gauges)
log = logging.getLogger("vpa.coordinator")


def config_from_settings(settings: Settings) -> CoordinatorConfig:
    limit = settings.max_concurrent_jobs
    if limit == "auto":
        limit = auto_concurrency(ray.cluster_resources())
    return CoordinatorConfig(
        max_concurrent_jobs=limit,
        job_timeout_s=settings.job_timeout,
        default_max_retries=settings.max_retries,
        retry_backoff_base_s=settings.retry_backoff_base_s,
        retry_backoff_max_s=settings.retry_backoff_max_s,
        cancel_grace_s=settings.cancel_grace_s,
        progress_persist_interval_s=settings.progress_persist_interval_s,
        db_outage_max_s=settings.db_outage_max_s,
        fetch_options=FetchOptions(
            allow_private_urls=settings.allow_private_urls,
            max_download_bytes=settings.max_download_bytes,
            max_media_duration_s=settings.max_media_duration_s,
        ),
        retention_days=settings.retention_days,
        artifact_max_bytes=settings.artifact_max_bytes,
        retention_sweep_s=settings.retention_sweep_s,
        upload_ttl_s=settings.upload_ttl_s,
        webhooks=WebhookConfig(
            secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            backoff_base_s=settings.webhook_backoff_base_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            timeout_s=settings.webhook_timeout_s,
            allow_private_urls=settings.allow_private_urls,
        ),
    )


class JobCoordinatorActor:
    """The actor's class; `JobCoordinator` is its Ray actor class."""

    def __init__(self, settings_json: str, generation: float = 0.0) -> None:
        self._settings = Settings.model_validate_json(settings_json)
        self._generation = generation
        setup_logging(self._settings, role="coordinator", required=False)
        engine = create_db_engine(self._settings.resolved_database_url())
        init_db(engine)
        self._hub = get_hub(self._settings)
        self._stages = RayStageRunner(self._settings)
        self._core = CoordinatorCore(
            repo=JobRepository(engine),
            store=open_store(storage_config(self._settings)),
            config=config_from_settings(self._settings),
            stages=self._stages,
            publish=self._publish,
        )
        self._recovery: asyncio.Task[int] | None = None
        self._rates = CreationRate()  # per API key, for every Ingress replica at once
        # One ordered, batched stream of this coordinator's updates to the hub.
        self._publisher = PublishQueue(self._send_to_hub, self._refresh_hub)
        self._publishing: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None

    def _publish(self, job_id: str, seq: int, message: dict[str, Any]) -> None:
        self._publisher.put(job_id, seq, message)

    async def _send_to_hub(self, batch: list[tuple[str, int, dict[str, Any]]]) -> None:
        await self._hub.publish_many.remote(batch)

    def _refresh_hub(self) -> None:
        """The hub restarts on its own; a handle whose actor is gone for good is replaced."""
        with contextlib.suppress(Exception):
            self._hub = get_hub(self._settings)

    async def _check_hub(self) -> None:
        """Replace a hub handle whose actor is gone (killed for good, or its node lost)."""
        try:
            await asyncio.wait_for(self._hub.ping.remote(), 5.0)
        except (ray.exceptions.RayActorError, TimeoutError):
            log.warning("progress hub unreachable; getting a new one")
            self._hub = get_hub(self._settings)

    @contextlib.contextmanager
    def _database(self) -> Iterator[None]:
        """A command that found the database unreachable raises `DatabaseUnavailable` (the
        ingress answers 503 with Retry-After); the core rebuilds its queue once it is back."""
        try:
            yield
        except Exception as exc:
            if self._core.saw_outage(exc):
                raise DatabaseUnavailable(unavailable_detail(exc)) from exc
            raise

    async def _ensure_started(self) -> None:
        """Start publishing, and recover the queue once, on the first call; calls meanwhile
        wait for it, and a recovery that failed is tried again by the next call."""
        if self._publishing is None:
            self._publishing = asyncio.get_running_loop().create_task(self._publisher.run())
            self._core.removal.start()  # the retention sweep
            self._core.webhooks.start()  # pending webhook deliveries, this start's too
            self._gauges = asyncio.get_running_loop().create_task(self._report_gauges())
        if self._recovery is None:
            self._recovery = asyncio.get_running_loop().create_task(self._core.recover())
            self._recovery.add_done_callback(self._recovered)
        with self._database():
            await asyncio.shield(self._recovery)

    async def _report_gauges(self) -> None:
        """Queue depth and running jobs for the metrics (actors/metrics.py), now and then."""
        while True:
            status = self._core.queue_status()
            metrics.queue_sizes(status["queued"], status["running_count"])
            await asyncio.sleep(GAUGES_INTERVAL_S)

    def _recovered(self, task: asyncio.Task[int]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._recovery = None
        else:
            log.info("coordinator started; %d job(s) recovered into the queue", task.result())

    async def ping(self) -> dict[str, Any]:
        await self._ensure_started()
        return {
            "ok": True,
            "running": len(self._core.running),
            "queued": len(self._core.queue),
            "generation": self._generation,
            "max_concurrent_jobs": self._core.config.max_concurrent_jobs,
            "models_connected": self._stages.models is not None,
        }

    async def adopt(
        self, settings_json: str, generation: float, models: ServeModels | None = None
    ) -> dict[str, Any]:
        """Take the settings and model handles of a newer deployment (its ingress replicas
        call this every second), so a redeploy with, say, another MAX_CONCURRENT_JOBS takes
        effect without a restart."""
        await self._check_hub()
        if models is not None and (self._stages.models is None or generation >= self._generation):
            self._stages.models = models
        if generation > self._generation:
            self._settings = Settings.model_validate_json(settings_json)
            self._stages.settings = self._settings
            self._generation = generation
            setup_logging(self._settings, role="coordinator", required=False)
            self._core.reconfigure(config_from_settings(self._settings))
            log.info("coordinator adopted the settings of deployment %.3f", generation)
        return await self.ping()

    async def submit(
        self,
        data: dict[str, Any],
        owner: str = ADMIN_OWNER,
        per_minute: int | None = None,
        max_active: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """A job of `owner` (an API key's id, or the admin), who may create `per_minute` a
        minute and have `max_active` active (None: no limit); else `TooManyRequests`."""
        await self._ensure_started()
        self._rates.take(owner, per_minute)
        with self._database():
            job, created = await self._core.submit(
                JobCreate.model_validate(data), owner, max_active
            )
        return JobPublic.model_validate(job).model_dump(mode="json"), created

    async def cancel(self, job_id: str) -> dict[str, Any]:
        await self._ensure_started()
        with self._database():
            job = await self._core.cancel(job_id)
        return JobPublic.model_validate(job).model_dump(mode="json")

    async def retry(self, job_id: str) -> dict[str, Any]:
        await self._ensure_started()
        with self._database():
            job = await self._core.retry(job_id)
        return JobPublic.model_validate(job).model_dump(mode="json")

    async def delete(self, job_id: str) -> None:
        await self._ensure_started()
        with self._database():
            await self._core.delete(job_id)

    async def clear_queue(self) -> int:
        await self._ensure_started()
        with self._database():
            return await self._core.clear_queue()

    async def should_stop(self, job_id: str, attempt: int) -> bool:
        return self._core.should_stop(job_id, attempt)

    async def report_progress(
        self, job_id: str, attempt: int, stage: str, fraction: float, message: str
    ) -> None:
        self._core.report_progress(job_id, attempt, stage, fraction, message)

    async def queue_status(self) -> dict[str, Any]:
        await self._ensure_started()
        return self._core.queue_status()

    async def workers(self) -> list[dict[str, Any]]:
        await self._ensure_started()
        return self._core.workers()

    async def overhead_samples(self) -> list[float]:
        return list(self._core.dispatch_overhead_s)


# num_cpus=0: the coordinator mostly waits; on a 2-core machine a reserved CPU would starve
# the stage tasks. Restarted by Ray after a crash; it recovers its queue on first use.
_COORDINATOR_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 1000, "max_restarts": -1}
JobCoordinator: Any = ray.remote(**_COORDINATOR_OPTIONS)(JobCoordinatorActor)


def get_hub(settings: Settings) -> Any:
    return ProgressHub.options(
        name=HUB_NAME, namespace=settings.ray_namespace, lifetime="detached", get_if_exists=True
    ).remote(log_config(settings))


def coordinator_name(settings: Settings) -> str:
    """One coordinator per database: it is the single writer of that database's jobs."""
    digest = hashlib.sha1(settings.resolved_database_url().encode()).hexdigest()[:12]
    return COORDINATOR_PREFIX + digest


def get_coordinator(settings: Settings, generation: float = 0.0) -> Any:
    """The coordinator handle, creating the actor if none is alive."""
    return JobCoordinator.options(
        name=coordinator_name(settings),
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(settings.model_dump_json(), generation)
