"""Application builder: wiring only. `serve run serve_config.yaml` calls `build_app(args)`.

`args` (from the YAML's `args:` or `serve run serve_app:build_app key=value`) override
settings read from the environment / .env, e.g. `max_concurrent_jobs: 4`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from ray import serve

from config.logging import log_config, setup_logging
from config.settings import Settings
from deployments.analyzer import Analyzer
from deployments.ingress import Ingress
from deployments.transcriber import Transcriber
from storage.db import upgrade_database
from storage.stores import open_store, storage_config


def load_settings(args: dict[str, Any] | None = None) -> Settings:
    """Settings from the environment, `args` on top, relative paths made absolute (Ray
    workers do not share the driver's working directory)."""
    base = Settings()
    merged = Settings.model_validate({**base.model_dump(), **(args or {})})
    return absolute_paths(merged)


def absolute_paths(merged: Settings) -> Settings:
    update: dict[str, Any] = {
        "database_url": merged.resolved_database_url(),
        "artifact_dir": str(merged.artifact_path),
        "scratch_dir": str(merged.scratch_path),
    }
    if merged.log_file:
        update["log_file"] = str(Path(merged.log_file).resolve())
    return merged.model_copy(update=update)


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """Build the vpa application from settings plus `args` overrides."""
    return app_from_settings(load_settings(args))


def model_options(settings: Settings, name: str) -> dict[str, Any]:
    """Serve deployment options of the Transcriber or Analyzer (`name`) from settings:
    CPUs and, with ENABLE_GPU, a share of a GPU per replica, replica bounds and the ongoing
    requests autoscaling aims at."""
    get = lambda key: getattr(settings, f"{name}_{key}")  # noqa: E731
    actor: dict[str, Any] = {"num_cpus": get("num_cpus")}
    if settings.enable_gpu:
        actor["num_gpus"] = get("num_gpus")
    return {
        "ray_actor_options": actor,
        "max_ongoing_requests": get("max_ongoing_requests"),
        "autoscaling_config": {
            "min_replicas": get("min_replicas"),
            "max_replicas": get("max_replicas"),
            "target_ongoing_requests": get("target_ongoing_requests"),
            # scale out fast (a queue builds quickly), in slowly (models take seconds to load)
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
        },
    }


def model_deployments(settings: Settings) -> tuple[serve.Application, serve.Application]:
    """The Transcriber and Analyzer, each on a share of a GPU when ENABLE_GPU is on."""
    device = "auto" if settings.enable_gpu else "cpu"
    transcriber = cast(Any, Transcriber).options(**model_options(settings, "transcriber"))
    analyzer = cast(Any, Analyzer).options(**model_options(settings, "analyzer"))
    return (
        transcriber.bind(
            settings.whisper_engine,
            settings.whisper_model,
            device,
            settings.whisper_max_loaded_models,
            settings.transcriber_max_ongoing_requests,
            storage=storage_config(settings),
            logs=log_config(settings),
        ),
        analyzer.bind(
            settings.spacy_model, settings.sentiment_model, device, logs=log_config(settings)
        ),
    )


def app_from_settings(
    settings: Settings, ingress_replicas: int | None = None, with_models: bool = True
) -> serve.Application:
    """The application for these settings; `ingress_replicas` overrides INGRESS_REPLICAS.
    Without models, jobs that need them fail their model stage with a clear error (used by
    control-plane tests and benchmarks)."""
    setup_logging(settings, role="main")
    # Upgrade the schema once, up front (replicas and the coordinator then find it current).
    upgrade_database(settings.resolved_database_url())
    open_store(storage_config(settings))  # a bad ARTIFACT_URL fails here, before deploying
    deployment = cast(Any, Ingress).options(
        num_replicas=ingress_replicas if ingress_replicas is not None else settings.ingress_replicas
    )
    # The generation orders deployments: the coordinator adopts the newest one's settings.
    models = model_deployments(settings) if with_models else (None, None)
    application: serve.Application = deployment.bind(
        settings.model_dump_json(), time.time(), *models
    )
    return application
