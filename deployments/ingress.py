"""The ingress deployment: a Serve replica hosting the FastAPI app of `deployments.api`."""

from __future__ import annotations

import uuid
from typing import Any

from ray import serve

from actors.job_coordinator import get_hub
from actors.stage_task import ServeModels
from config.logging import setup_logging
from config.settings import Settings
from deployments.api import create_app
from deployments.services import CoordinatorClient, IngressServices
from storage.db import create_db_engine, init_db
from storage.repository import JobRepository
from storage.stores import open_store, storage_config


def build_services(
    settings: Settings,
    generation: float = 0.0,
    replica_id: str | None = None,
    models: Any = None,
) -> IngressServices:
    engine = create_db_engine(settings.resolved_database_url())
    init_db(engine)
    return IngressServices(
        settings=settings,
        repo=JobRepository(engine),
        store=open_store(storage_config(settings)),
        coordinator=CoordinatorClient(settings, generation, models),
        hub=get_hub(settings),
        replica_id=replica_id or uuid.uuid4().hex[:12],
    )


@serve.deployment(
    name="Ingress",
    ray_actor_options={"num_cpus": 0.1},
    # Every open WebSocket holds one of these for as long as it is open: 10,000 leave room
    # for thousands of live clients and the requests beside them. Past that, requests wait
    # in a bounded queue, and past that Serve answers 503 at once instead of letting them hang.
    max_ongoing_requests=10_000,
    max_queued_requests=1_000,
    health_check_period_s=5,
)
@serve.ingress()
class Ingress:
    """One replica: its own DB engine (reads), coordinator client, and progress fan-out."""

    def __init__(
        self,
        settings_json: str,
        generation: float = 0.0,
        transcriber: Any = None,
        analyzer: Any = None,
    ) -> None:
        self._settings = Settings.model_validate_json(settings_json)
        setup_logging(self._settings, role="ingress", required=False)
        try:
            replica_id = serve.get_replica_context().replica_tag
        except Exception:
            replica_id = None
        # The model handles go to the coordinator, which hands them to the stage tasks.
        have_models = transcriber is not None and analyzer is not None
        models = ServeModels(transcriber, analyzer) if have_models else None
        self._services = build_services(self._settings, generation, replica_id, models)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self._services)
