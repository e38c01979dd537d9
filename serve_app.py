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
from deployments.ingress import Ingress
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


def app_from_settings(settings: Settings, ingress_replicas: int | None = None) -> serve.Application:
    """The application for these settings; `ingress_replicas` overrides the replica count
    (serve_config.yaml sets it for `serve run`)."""
    setup_logging(settings)
    # Create the schema once, up front, so replicas never race on CREATE TABLE.
    init_db(create_db_engine(settings.resolved_database_url()))
    settings.artifact_path.mkdir(parents=True, exist_ok=True)
    deployment = cast(Any, Ingress)  # a serve.Deployment; the decorator is untyped
    if ingress_replicas is not None:
        deployment = deployment.options(num_replicas=ingress_replicas)
    # The generation orders deployments: the coordinator adopts the newest one's settings.
    application: serve.Application = deployment.bind(settings.model_dump_json(), time.time())
    return application
