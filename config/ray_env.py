"""Ray's and Ray Serve's own environment variables for vpa's settings.

Ray reads these when its processes start (the raylet, Serve's controller and every
replica), not from a call: whoever starts Ray puts them in its environment first (`main.py`
for a local instance, the test and benchmark fixtures for theirs). A cluster vpa joins
(RAY_ADDRESS) keeps the environment its nodes were started with: set the same variables
there (docs/deploy.md).
"""

from __future__ import annotations

import os

from config.settings import Settings


def ray_env(settings: Settings, num_cpus: int | None = None) -> dict[str, str]:
    """Everything below, for a Ray instance of `num_cpus` CPUs (default: this machine's)."""
    return {**serve_env(settings), **worker_env(settings, num_cpus)}


def worker_env(settings: Settings, num_cpus: int | None = None) -> dict[str, str]:
    """How many idle worker processes the raylet keeps (`RAY_num_workers_soft_limit`).

    Every stage of a job runs as a Ray task in a pooled worker process, and a new worker
    first spends about a CPU-second importing Ray and the pipeline. Ray keeps only as many
    idle workers as the node has CPUs and kills the others after a second idle, so with
    more job slots than CPUs (3 slots on a 2-core machine) every lull killed a warm worker
    and the next job paid for a new one. One idle worker per job slot, and one more for a
    job moving from one stage to the next, stay; never fewer than Ray's own default.
    """
    cpus = max(num_cpus or os.cpu_count() or 1, 1)
    limit = settings.max_concurrent_jobs
    slots = cpus if limit == "auto" else limit  # "auto" is one job per CPU
    return {"RAY_num_workers_soft_limit": str(max(cpus, slots + 1))}


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
