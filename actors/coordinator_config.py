"""The coordinator's settings, `CoordinatorConfig`, and the retry backoff they define.

`config_from_settings` (actors/job_coordinator.py) builds one from `Settings` at start and
again on each redeploy; both halves of the coordinator (`CoordinatorCore`, `JobRunner`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.types import FetchOptions


@dataclass(frozen=True)
class CoordinatorConfig:
    max_concurrent_jobs: int = 3
    job_timeout_s: float = 3600.0
    default_max_retries: int = 3
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    cancel_grace_s: float = 3.0
    progress_persist_interval_s: float = 0.5
    fetch_options: FetchOptions = field(default_factory=FetchOptions)


def backoff_s(config: CoordinatorConfig, retry_number: int) -> float:
    """Delay before retry number `retry_number` (1-based): base * 2**(n-1), capped."""
    return min(
        config.retry_backoff_base_s * (2 ** max(retry_number - 1, 0)), config.retry_backoff_max_s
    )
