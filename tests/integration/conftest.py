"""One real Ray instance and Serve per test session; the vpa app deployed on top of it.

`vpa_app(**overrides)` (re)deploys the application with settings for a test module: it
kills the previous coordinator and hub so the new settings take effect, deploys, and waits
for /health. Modules share one deployment through a module-scoped fixture.

Deploying the model deployments (Whisper, the NLP models) is the costliest step, so the
modules that need them with the same settings share one: `models_app` (API keys on, its
client sends the admin key). `pytest_collection_modifyitems` runs those modules one after
another, last; `models_app` deploys again only if another deployment replaced it since.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve

from actors.job_coordinator import COORDINATOR_PREFIX, HUB_NAME
from config.ray_env import ray_env
from config.settings import Settings
from serve_app import absolute_paths, app_from_settings

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "vpa-test"
RAY_CPUS = 8  # declared to the shared test instance: more than this machine has
TERMINAL = {"completed", "failed", "cancelled"}
MODELS_ADMIN_KEY = "vpa-test-models-admin-key"  # models_app's ADMIN_API_KEY
MODELS_ADMIN_HEADERS = {"Authorization": f"Bearer {MODELS_ADMIN_KEY}"}


def _uses_models_app(item: pytest.Item) -> bool:
    return "models_app" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every module with a test on `models_app` runs after the others (order kept within
    each group), so the shared model deployment is deployed once."""
    sharing = {getattr(item, "module", None) for item in items if _uses_models_app(item)}
    sharing.discard(None)
    first = [i for i in items if getattr(i, "module", None) not in sharing]
    items[:] = first + [i for i in items if getattr(i, "module", None) in sharing]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def http_port() -> int:
    return _free_port()


def use_ingress_proxy(proxy: str = "haproxy", num_cpus: int | None = None) -> dict[str, str]:
    """Put vpa's Ray and Serve variables (config/ray_env.py) for INGRESS_PROXY=`proxy` and
    a Ray instance of `num_cpus` CPUs in this process's environment, for the Ray instance
    started next: its processes inherit them. HAProxy's statistics and Prometheus ports are
    free ones, so a benchmark's Ray instance started beside the tests' does not collide
    with it."""
    settings = Settings(
        _env_file=None,
        ingress_proxy=proxy,
        haproxy_stats_port=_free_port(),
        haproxy_metrics_port=_free_port(),
        ingress_drain_s=1.0,  # stopping replicas: the tests' teardowns need not wait 5 s
    )
    env = ray_env(settings, num_cpus)
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def ingress_env() -> dict[str, str]:
    """The session's Serve variables: HAProxy in front, as `make serve` runs it."""
    return use_ingress_proxy("haproxy", RAY_CPUS)


@pytest.fixture(scope="session")
def ray_cluster(http_port: int, ingress_env: dict[str, str]) -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",  # never a cluster a `ray start` on this machine left behind
        num_cpus=RAY_CPUS,
        num_gpus=4,  # declared, not real: GPU placement is testable on a CPU machine
        namespace=NAMESPACE,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        logging_level=logging.WARNING,
        # processes report their metrics every 2 s, not 10: /metrics shows a figure sooner
        _system_config={"metrics_report_interval_ms": 2000},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    yield
    serve.shutdown()
    ray.shutdown()


def kill_named(name: str) -> None:
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE))
    except ValueError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)


@dataclass
class VpaApp:
    base_url: str
    settings: Settings
    client: httpx.Client

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def submit(self, url: str, job_type: str = "audio_extraction", **body: Any) -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/jobs/", json={"youtube_url": url, "job_type": job_type, **body}
        )
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait(
        self,
        job_id: str,
        statuses: Collection[str] | Callable[[dict[str, Any]], bool] = frozenset(TERMINAL),
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.job(job_id)
            done = statuses(job) if callable(statuses) else job["status"] in statuses
            if done:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")

    def events(self, job_id: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/jobs/{job_id}/events")
        assert r.status_code == 200, r.text
        return list(r.json())


def kill_vpa_actors() -> None:
    """Stop the app and its detached actors: what a whole-application restart looks like."""
    serve.delete("vpa")
    for name in ray.util.list_named_actors():
        if isinstance(name, str) and name.startswith(COORDINATOR_PREFIX):
            kill_named(name)
    kill_named(HUB_NAME)


def deploy(
    http_port: int,
    settings: Settings,
    ingress_replicas: int = 1,
    with_models: bool = False,
    headers: dict[str, str] | None = None,
) -> VpaApp:
    """Deploy vpa; the model deployments only for the tests that run model stages. The
    app's client sends `headers` with every request (an API key)."""
    kill_vpa_actors()
    application = app_from_settings(settings, ingress_replicas, with_models=with_models)
    serve.run(application, name="vpa", route_prefix="/")
    base = f"http://127.0.0.1:{http_port}"
    client = httpx.Client(base_url=base, timeout=60.0, headers=headers)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get("/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("vpa did not become healthy")
        time.sleep(0.2)
    _CLIENTS.append(client)
    _LATEST[:] = [VpaApp(base_url=base, settings=settings, client=client)]
    return _LATEST[0]


# The app deployed last: the one serving now.
_LATEST: list[VpaApp] = []


# Every deployed app's client, closed when its Ray instance goes (an app deployed later on
# the same port replaces the app but not the URL, so older clients stay usable until then).
_CLIENTS: list[httpx.Client] = []


def close_clients() -> None:
    """Close the HTTP clients of every app deployed so far."""
    while _CLIENTS:
        _CLIENTS.pop().close()


def make_settings(tmp: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite:///{tmp / 'vpa.db'}",
        "artifact_dir": str(tmp / "artifacts"),
        "scratch_dir": str(tmp / "scratch"),
        "log_file": str(tmp / "vpa.log"),
        "allow_private_urls": True,
        "max_concurrent_jobs": 2,
        "retry_backoff_base_s": 0.2,
        "progress_persist_interval_s": 0.1,
        "ray_namespace": NAMESPACE,
        "environment": "test",
        **overrides,
    }
    return absolute_paths(Settings(_env_file=None, **values))


@pytest.fixture(scope="session")
def deploy_vpa(
    ray_cluster: None, http_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., VpaApp]]:
    def _deploy(
        database_url: str | None = None,
        ingress_replicas: int = 1,
        with_models: bool = False,
        headers: dict[str, str] | None = None,
        **overrides: Any,
    ) -> VpaApp:
        tmp = tmp_path_factory.mktemp("vpa")
        settings = make_settings(tmp, database_url, **overrides)
        return deploy(http_port, settings, ingress_replicas, with_models, headers)

    yield _deploy
    close_clients()


@pytest.fixture(scope="session")
def _models_apps() -> list[VpaApp]:
    return []


@pytest.fixture(scope="module")
def models_app(
    deploy_vpa: Callable[..., VpaApp], sample_media: Any, _models_apps: list[VpaApp]
) -> VpaApp:
    """The model deployment the transcription, clips, OpenAI API, web and CLI modules share:
    two job slots, API keys on (`MODELS_ADMIN_KEY`; its client sends it). Deployed again
    only when another deployment replaced it since."""
    if not _models_apps or _LATEST[0] is not _models_apps[0]:
        _models_apps[:] = [
            deploy_vpa(
                with_models=True,
                max_concurrent_jobs=2,
                admin_api_key=MODELS_ADMIN_KEY,
                headers=MODELS_ADMIN_HEADERS,
            )
        ]
    return _models_apps[0]
