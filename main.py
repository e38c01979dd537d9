"""`make serve` / `python main.py`: start Ray (or join RAY_ADDRESS), deploy vpa, serve.

Listens on API_HOST:API_PORT (default http://127.0.0.1:8000) until Ctrl-C. The Ray
dashboard for monitoring runs at http://127.0.0.1:8265 when Ray is started here.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import ray
from ray import serve

from serve_app import build_app, load_settings

log = logging.getLogger("vpa.main")


def main() -> None:
    settings = load_settings()
    here = os.path.dirname(os.path.abspath(__file__))
    runtime_env = {"env_vars": {"PYTHONPATH": here, "HF_HUB_OFFLINE": "1"}}
    # RAY_ADDRESS (Ray's own variable) joins an existing cluster; otherwise start one here.
    ray.init(namespace=settings.ray_namespace, runtime_env=runtime_env, include_dashboard=True)
    serve.start(http_options={"host": settings.api_host, "port": settings.api_port})
    serve.run(build_app(), name="vpa", route_prefix="/")
    url = f"http://{settings.api_host}:{settings.api_port}"
    print(f"vpa is serving on {url} (docs: {url}/docs); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
