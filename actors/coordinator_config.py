"""The coordinator's settings, `CoordinatorConfig`, and the retry backoff they define.

`config_from_settings` (actors/job_coordinator.py) builds one from `Settings` at start and
again on each redeploy; both halves of the coordinator (`CoordinatorCore`, `JobRunner`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.options import FetchOptions


@dataclass(frozen=True)
class WebhookConfig:
    """How the coordinator sends webhooks (actors/webhooks.py)."""

    secret: str | None = None  # "whsec_<base64>"; None: no webhook is sent (nor accepted)
    max_attempts: int = 6
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    allow_private_urls: bool = False


@dataclass(frozen=True)
class CoordinatorConfig:
    max_concurrent_jobs: int = 3
    job_timeout_s: float = 3600.0
    default_max_retries: int = 3
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    cancel_grace_s: float = 3.0
    progress_persist_interval_s: float = 0.5
    db_outage_max_s: float = 300.0  # how long a running job's write waits for the database
    fetch_options: FetchOptions = field(default_factory=FetchOptions)
    retention_days: float = 0.0  # finished jobs older than this are deleted; 0: never
    artifact_max_bytes: int | None = None  # artifacts of all jobs above this are evicted
    retention_sweep_s: float = 3600.0
    upload_ttl_s: float = 24 * 3600.0  # an upload no job names is deleted this long after
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)


def auto_concurrency(cluster_resources: dict[str, float]) -> int:
    """MAX_CONCURRENT_JOBS=auto: one running job per CPU the cluster has (at least 1, at
    most 1000). A job runs one stage at a time, and its CPU stages (download, ffmpeg)
    reserve at most half a CPU while the model stages wait on the model deployments, so one
    job per CPU keeps every node busy without queueing work inside Ray."""
    cpus = int(cluster_resources.get("CPU", 1.0))
    return min(max(cpus, 1), 1000)


def backoff_s(config: CoordinatorConfig, retry_number: int) -> float:
    """Delay before retry number `retry_number` (1-based): base * 2**(n-1), capped."""
    return min(
        config.retry_backoff_base_s * (2 ** max(retry_number - 1, 0)), config.retry_backoff_max_s
    )


def webhook_delay_s(config: WebhookConfig, attempt: int) -> float:
    """Wait after a webhook's failed attempt number `attempt` (1-based): base * 2**(n-1),
    capped at `backoff_max_s`."""
    return min(config.backoff_base_s * (2 ** max(attempt - 1, 0)), config.backoff_max_s)


def webhook_schedule_s(config: WebhookConfig) -> list[float]:
    """When each attempt of a delivery that always fails is made, in seconds from the first."""
    times = [0.0]
    for attempt in range(1, config.max_attempts):
        times.append(times[-1] + webhook_delay_s(config, attempt))
    return times
