"""`GET /metrics`: vpa's figures in Prometheus' text format, for the whole cluster.

The figures are the ones vpa records through Ray's metrics (actors/metrics.py): this route
reads them from the Prometheus endpoint of every alive Ray node (the metrics export port
Ray's metrics agent serves) and relays vpa's families, summed over processes and nodes
(deployments/metrics_relay.py). One source of truth: Ray's endpoints, and Ray's own
dashboards, show the same figures as `ray_vpa_*`.

A node that does not answer fails the scrape (503) rather than being left out: a node's
counters missing from a sum would look to Prometheus like a counter reset. With API keys
on, only the admin key reads it (the figures are the whole service's), or METRICS_API_KEY,
a scrape-only credential that opens nothing else; its labels never hold a job id, an API
key or an owner.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

import httpx
from fastapi import APIRouter, Depends, HTTPException, Response, status
from starlette.requests import HTTPConnection

from deployments.auth import authenticate, presented_key
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


async def metrics_reader(conn: HTTPConnection) -> None:
    """METRICS_API_KEY, or the admin key (any caller while API keys are off); else 401
    without a valid key, 403 for another API key."""
    metrics_key = conn.app.state.services.settings.metrics_api_key
    key = presented_key(conn)
    if (
        key is not None
        and metrics_key is not None
        and hmac.compare_digest(key.encode(), metrics_key.encode())
    ):
        return
    principal = await authenticate(conn)
    if not principal.admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only the admin key (ADMIN_API_KEY) or METRICS_API_KEY reads /metrics",
        )


@router.get(
    "/metrics",
    summary="vpa's figures in Prometheus' text format",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, 401: {}, 403: {}, 503: {}},
    dependencies=[Depends(metrics_reader)],
)
async def metrics() -> Response:
    urls = await asyncio.to_thread(metric_endpoints)
    async with httpx.AsyncClient(timeout=NODE_TIMEOUT_S) as client:
        texts = await asyncio.gather(*(_scrape(client, url) for url in urls))
    return Response(content=relay(texts), media_type=CONTENT_TYPE)
