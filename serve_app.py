"""Application builder: wiring only. `serve run serve_config.yaml` calls `build_app(args)`.

`args` (from the YAML's `args:` or `serve run serve_app:build_app key=value`) override
settings read from the environment / .env, e.g. `max_concurrent_jobs: 4`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from ray import serve

from config.logging import setup_logging
from config.settings import Settings
from deployments.analyzer import Analyzer
from deployments.ingress import Ingress
from deployments.transcriber import Transcriber
from storage.db import create_db_engine, init_db


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
    }
    if merged.log_file:
        update["log_file"] = str(Path(merged.log_file).resolve())
    return merged.model_copy(update=update)


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """Build the vpa application from settings plus `args` overrides."""
    return app_from_settings(load_settings(args))


def model_deployments(settings: Settings) -> tuple[serve.Application, serve.Application]:
    """The Transcriber and Analyzer, on a GPU each when ENABLE_GPU is on."""
    gpus = 1 if settings.enable_gpu else 0
    device = "auto" if settings.enable_gpu else "cpu"
    transcriber = cast(Any, Transcriber).options(
        ray_actor_options={"num_cpus": 0.5, "num_gpus": gpus}
    )
    analyzer = cast(Any, Analyzer).options(ray_actor_options={"num_cpus": 0.25, "num_gpus": gpus})
    return (
        transcriber.bind(
            settings.whisper_engine,
            settings.whisper_model,
            device,
            settings.whisper_max_loaded_models,
        ),
        analyzer.bind(settings.spacy_model, settings.sentiment_model, device),
    )


def app_from_settings(
    settings: Settings, ingress_replicas: int | None = None, with_models: bool = True
) -> serve.Application:
    """The application for these settings; `ingress_replicas` overrides the replica count
    (serve_config.yaml sets it for `serve run`). Without models, jobs that need them fail
    their model stage with a clear error (used by control-plane tests and benchmarks)."""
    setup_logging(settings)
    # Create the schema once, up front, so replicas never race on CREATE TABLE.
    init_db(create_db_engine(settings.resolved_database_url()))
    settings.artifact_path.mkdir(parents=True, exist_ok=True)
    deployment = cast(Any, Ingress)  # a serve.Deployment; the decorator is untyped
    if ingress_replicas is not None:
        deployment = deployment.options(num_replicas=ingress_replicas)
    # The generation orders deployments: the coordinator adopts the newest one's settings.
    models = model_deployments(settings) if with_models else (None, None)
    application: serve.Application = deployment.bind(
        settings.model_dump_json(), time.time(), *models
    )
    return application
