"""Monitoring: the coordinator's worker slots with Serve's deployments, and service health.

Two routers because they live under two prefixes: `/api/v1/workers` and the root `/health`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from deployments.deps import CoordinatorDep, ServicesDep

log = logging.getLogger("vpa.api")

router = APIRouter(tags=["monitoring"])
health_router = APIRouter(tags=["monitoring"])


@router.get("/workers", summary="Worker slots and model replicas")
async def workers(coordinator: CoordinatorDep) -> Any:
    slots = await coordinator.call("workers")
    return {"workers": slots, "replicas": await asyncio.to_thread(serve_deployments)}


def serve_deployments() -> list[dict[str, Any]]:
    """Serve's view of every deployment (model deployments and the ingress): its status and
    how many of its replicas are in each state, one entry per deployment."""
    try:
        from ray import serve

        status = serve.status()
    except Exception as exc:  # not running under Serve
        return [{"error": str(exc)}]
    out: list[dict[str, Any]] = []
    for app_name, app_status in status.applications.items():
        for name, dep in app_status.deployments.items():
            out.append(
                {
                    "application": app_name,
                    "deployment": name,
                    "status": str(dep.status.value if hasattr(dep.status, "value") else dep.status),
                    "replica_states": {
                        str(k.value if hasattr(k, "value") else k): v
                        for k, v in dep.replica_states.items()
                    },
                    "message": dep.message,
                }
            )
    return out


@health_router.get("/health", summary="Service health")
async def health(services: ServicesDep) -> Any:
    db_ok = True
    coord: dict[str, Any] = {"ok": False}
    try:
        await asyncio.to_thread(services.repo.count_by_status)
    except Exception as exc:
        db_ok = False
        log.warning("health: database check failed: %s", exc)
    try:
        coord = await asyncio.wait_for(services.coordinator.call("ping"), 5.0)
    except Exception as exc:
        coord = {"ok": False, "error": str(exc)}
    healthy = db_ok and bool(coord.get("ok"))
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={
            "status": "healthy" if healthy else "unhealthy",
            "queue_running": bool(coord.get("ok")),
            "debug": services.settings.debug,
            "environment": services.settings.environment,
            "database": {"ok": db_ok, "backend": services.repo.engine.dialect.name},
            "coordinator": coord,
            "replica": services.replica_id,
        },
    )
