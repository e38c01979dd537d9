"""`GET /metrics`: vpa's figures in Prometheus' text format, for the whole cluster.

The figures are the ones vpa records through Ray's metrics (actors/metrics.py): this route
reads them from the Prometheus endpoint of every alive Ray node (the metrics export port
Ray's metrics agent serves) and relays vpa's families, summed over processes and nodes
(deployments/metrics_relay.py). One source of truth: Ray's endpoints, and Ray's own
dashboards, show the same figures as `ray_vpa_*`.

A node that does not answer fails the scrape (503) rather than being left out: a node's
counters missing from a sum would look to Prometheus like a counter reset. With API keys
on, only the admin key reads it (the figures are the whole service's); its labels never
hold a job id, an API key or an owner.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import APIRouter, HTTPException, Response, status

from deployments.auth import PrincipalDep
from deployments.metrics_relay import CONTENT_TYPE, relay

log = logging.getLogger("vpa.api")

NODE_TIMEOUT_S = 5.0

router = APIRouter(tags=["monitoring"])


def metric_endpoints() -> list[str]:
    """The Prometheus URL of every alive Ray node's metrics agent; none outside Ray."""
    import ray

    if not ray.is_initialized():
        return []
    urls = []
    for node in ray.nodes():
        if node.get("Alive") and node.get("MetricsExportPort"):
            host = str(node["NodeManagerAddress"])
            host = f"[{host}]" if ":" in host else host  # an IPv6 address
            urls.append(f"http://{host}:{node['MetricsExportPort']}/metrics")
    return urls


async def _scrape(client: httpx.AsyncClient, url: str) -> str:
    try:
        answer = await client.get(url)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("metrics: %s did not answer: %s", url, exc)
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the Ray metrics endpoint {url} did not answer; try again shortly",
            headers={"Retry-After": "5"},
        ) from exc
    return answer.text


@router.get(
    "/metrics",
    summary="vpa's figures in Prometheus' text format",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, 403: {}, 503: {}},
)
async def metrics(principal: PrincipalDep) -> Response:
    if not principal.admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only the admin key (ADMIN_API_KEY) reads /metrics",
        )
    urls = await asyncio.to_thread(metric_endpoints)
    async with httpx.AsyncClient(timeout=NODE_TIMEOUT_S) as client:
        texts = await asyncio.gather(*(_scrape(client, url) for url in urls))
    return Response(content=relay(texts), media_type=CONTENT_TYPE)
