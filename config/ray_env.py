"""Ray Serve's own environment variables for vpa's settings.

Ray Serve reads these when its processes start (the controller and every replica), not
from a call: whoever starts Ray puts them in its environment first (`main.py` for a local
instance, the test and benchmark fixtures for theirs). A cluster vpa joins (RAY_ADDRESS)
keeps the environment its nodes were started with: set the same variables there
(docs/deploy.md).
"""

from __future__ import annotations

from config.settings import Settings


def serve_env(settings: Settings) -> dict[str, str]:
    """The variables that put INGRESS_PROXY in front of the Ingress replicas.

    "haproxy": Serve's HAProxy ingress. HAProxy listens on API_PORT and forwards each
    connection straight to an Ingress replica's own HTTP port (Serve's direct ingress), so
    requests and WebSocket messages no longer cross a Python proxy actor and Ray's object
    transfers; HAProxy's statistics and Prometheus ports are HAPROXY_STATS_PORT and
    HAPROXY_METRICS_PORT; a stopping Ingress replica keeps serving INGRESS_DRAIN_S seconds.
    "serve": Serve's Python proxy actor.
    """
    # Replicas run their code on their own event loop, the one that also serves their
    # sockets (Serve's throughput-optimized setting), not on a second thread whose every
    # message to a socket crosses threads: a WebSocket update reached 200 clients 4x sooner.
    # vpa's replicas never block their loop (model work runs in executor threads).
    common = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
    if settings.ingress_proxy == "serve":
        return {**common, "RAY_SERVE_ENABLE_HA_PROXY": "0"}
    return {
        **common,
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.haproxy_stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.haproxy_metrics_port),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": f"{settings.ingress_drain_s:g}",
    }
