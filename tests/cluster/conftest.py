"""Tests that start a Ray instance of their own: one GPU shared by both model deployments,
and a simulated multi-node cluster (`ray.cluster_utils.Cluster`). `make test` runs them in a
second pytest session, after tests/unit and tests/integration, whose session-wide Ray
instance would otherwise be in the way; each module here starts and stops its own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ray
from ray import serve

from tests.integration.conftest import NAMESPACE, ROOT, _free_port, use_ingress_proxy

RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}}


def start_ray(ingress_proxy: str = "haproxy", **init: Any) -> int:
    """ray.init with `init` (an `address`, or resources for a new instance), the proxy
    (`ingress_proxy`, INGRESS_PROXY) on the head only (several nodes on one machine cannot
    all bind the port); returns the HTTP port. A cluster given by `address` was started
    with its Serve variables already (`use_ingress_proxy` before `Cluster`)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {}
    if "address" not in init:  # a new instance of our own, never a stale `ray start` head
        use_ingress_proxy(ingress_proxy, init.get("num_cpus"))
        options = {"address": "local", "include_dashboard": False}
    ray.init(
        namespace=NAMESPACE,
        runtime_env=RUNTIME_ENV,
        logging_level=logging.WARNING,
        **options,
        **init,
    )
    port = _free_port()
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    return port
