"""vpa under benchmark: Ray, Serve and the app on loopback with a temp SQLite database, read
back directly for bookkeeping, and jobs submitted and followed over HTTP as a client would."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, TERMINAL, free_port, log, wait_http

POLL_S = 0.2
POLL_FAILURES = 10  # polls in a row that may fail before poll_job gives up
WARM_UP_MINUTES = 20 / 60  # a 20 s video
WARM_UP_OPTIONS: dict[str, Any] = {"clip_duration": 8, "max_clips": 1, "min_confidence": 0.0}


def service_settings(tmp: Path, namespace: str, **overrides: Any) -> Any:
    """Settings for a service in `tmp`, like tests/integration/conftest.make_settings but
    with the production queue timings."""
    from config.settings import Settings
    from serve_app import absolute_paths

    return absolute_paths(
        Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp / 'vpa.db'}",
            artifact_dir=str(tmp / "artifacts"),
            log_file=str(tmp / "vpa.log"),
            allow_private_urls=True,
            ray_namespace=namespace,
            # free ports: a benchmark may run beside the tests' own Ray instance
            haproxy_stats_port=free_port(),
            haproxy_metrics_port=free_port(),
            ingress_drain_s=1.0,  # the benchmark's end need not wait
            **overrides,
        )
    )


class Stalled(RuntimeError):
    def __init__(self, message: str, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


class Service:
    """Ray + Serve + vpa for `settings` (started here; `shutdown` stops them), and direct
    reads of its database."""

    def __init__(
        self,
        settings: Any,
        num_cpus: int | None,
        ingress_replicas: int | None = None,
        with_models: bool = True,
    ) -> None:
        import ray
        from ray import serve

        from config.ray_env import ray_env
        from serve_app import app_from_settings
        from storage.db import create_db_engine

        self.settings = settings
        self.port = free_port()
        os.environ.update(ray_env(settings, num_cpus))  # Ray's processes inherit them
        ray.init(
            address="local",  # a new instance of our own, never a running `ray start` head
            num_cpus=num_cpus,
            namespace=settings.ray_namespace,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        )
        try:
            self.ray_cpus = float(ray.cluster_resources().get("CPU", 0))
            serve.start(http_options={"host": "127.0.0.1", "port": self.port})
            app = app_from_settings(settings, ingress_replicas, with_models=with_models)
            serve.run(app, name="vpa", route_prefix="/")
            self.deployments = sorted(serve.status().applications["vpa"].deployments)
        except BaseException:
            stop_ray()
            raise
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.engine = create_db_engine(settings.resolved_database_url())

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def wait_healthy(self, timeout_s: float = 120.0) -> None:
        wait_http(f"{self.base_url}/health", timeout_s)

    def overhead_samples(self) -> list[float]:
        import ray

        from actors.job_coordinator import coordinator_name

        name, namespace = coordinator_name(self.settings), self.settings.ray_namespace
        coordinator = ray.get_actor(name, namespace=namespace)
        return list(ray.get(coordinator.overhead_samples.remote()))

    def _select_in(
        self, statement: Callable[[list[uuid.UUID]], Any], ids: Sequence[str]
    ) -> list[Any]:
        """The rows of `statement(some ids)`, 500 ids a query."""
        from sqlmodel import Session

        uuids = [uuid.UUID(i) for i in ids]
        out: list[Any] = []
        with Session(self.engine) as session:
            for chunk in range(0, len(uuids), 500):
                out.extend(session.exec(statement(uuids[chunk : chunk + 500])).all())
        return out

    def statuses(self, ids: Sequence[str]) -> dict[str, int]:
        from sqlmodel import col, func, select

        from storage.models import Job

        def statement(part: list[uuid.UUID]) -> Any:
            where = select(Job.status, func.count()).where(col(Job.id).in_(part))
            return where.group_by(col(Job.status))

        counts: dict[str, int] = {}
        for status, n in self._select_in(statement, ids):
            key = str(getattr(status, "value", status))
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    def jobs(self, ids: Sequence[str]) -> list[Any]:
        from sqlmodel import col, select

        from storage.models import Job

        return self._select_in(lambda part: select(Job).where(col(Job.id).in_(part)), ids)

    def events(self, ids: Sequence[str]) -> list[Any]:
        from sqlmodel import col, select

        from storage.models import JobEvent

        return self._select_in(
            lambda part: select(JobEvent).where(col(JobEvent.job_id).in_(part)), ids
        )

    async def wait_terminal(
        self, ids: Sequence[str], timeout_s: float, stall_s: float = 120.0, label: str = ""
    ) -> dict[str, int]:
        """Poll until every job in `ids` is terminal. Raises `Stalled` with diagnostics."""
        deadline = time.monotonic() + timeout_s
        last_done, last_change, last_report = -1, time.monotonic(), 0.0
        while True:
            counts = await asyncio.to_thread(self.statuses, ids)
            done = sum(n for s, n in counts.items() if s in TERMINAL)
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
            if done >= len(ids):
                return counts
            if now - last_report > 15:
                last_report = now
                log(f"  {label}: {done}/{len(ids)} terminal {counts}")
            if now > deadline or now - last_change > stall_s:
                why = "timed out" if now > deadline else f"no job finished for {stall_s:.0f} s"
                raise Stalled(f"{label}: {why}; {done}/{len(ids)} terminal; {counts}", counts)
            await asyncio.sleep(0.5)

    async def diagnostics(self) -> str:
        parts: list[str] = []
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as client:
            for path in ("/api/v1/jobs/queue/status", "/api/v1/workers", "/health"):
                try:
                    r = await client.get(path)
                    parts.append(f"GET {path} -> {r.status_code} {r.text[:1500]}")
                except httpx.HTTPError as exc:
                    parts.append(f"GET {path} -> {type(exc).__name__}: {exc}")
        parts.append(await asyncio.to_thread(self.log_problems))
        return "\n".join(parts)

    def log_problems(self, last: int = 30) -> str:
        log_file = Path(self.settings.log_file or "")
        if not log_file.is_file():
            return "no vpa log file"
        lines = log_file.read_text(errors="replace").splitlines()
        bad = [ln for ln in lines if " ERROR " in ln or " WARNING " in ln or "Traceback" in ln]
        return f"vpa log warnings/errors (last {last} of {len(bad)}):\n" + "\n".join(bad[-last:])

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.dispose()
        stop_ray()


def stop_ray() -> None:
    """Serve, then Ray, whatever state they are in."""
    import ray
    from ray import serve

    with contextlib.suppress(Exception):
        serve.shutdown()
    with contextlib.suppress(Exception):
        ray.shutdown()


def post_job(client: httpx.Client, body: dict[str, Any]) -> str:
    """POST a job; its id."""
    r = client.post("/api/v1/jobs/", json=body)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"POST /api/v1/jobs/ -> {r.status_code}: {r.text[:500]}")
    return str(r.json()["id"])


def poll_job(
    client: httpx.Client,
    job_id: str,
    timeout_s: float,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The job as last polled (every POLL_S): terminal, or not after `timeout_s`. A poll
    that fails (an overloaded proxy answers 5xx) is retried; `POLL_FAILURES` in a row raise."""
    job: dict[str, Any] = {}
    failures = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/jobs/{job_id}")
        if r.status_code != 200:
            failures += 1
            if failures >= POLL_FAILURES:
                raise RuntimeError(f"GET /api/v1/jobs/{job_id} -> {r.status_code}: {r.text[:500]}")
            log(f"  GET /api/v1/jobs/{job_id} -> {r.status_code}: {r.text[:200]}; polling on")
            time.sleep(POLL_S)
            continue
        failures = 0
        job = r.json()
        if job["status"] in TERMINAL:
            break
        if on_poll is not None:
            on_poll(job)
        time.sleep(POLL_S)
    return job


def warm_up(client: httpx.Client, url: str) -> tuple[float, dict[str, Any]]:
    """One short full_processing job before the measured ones: a running service has its
    stage-task workers and model replicas warm; a cold start is a once-per-cluster cost.
    Its seconds, and the job as last seen."""
    t0 = time.perf_counter()
    body = {"youtube_url": url, "job_type": "full_processing", "options": WARM_UP_OPTIONS}
    job = poll_job(client, post_job(client, body), timeout_s=300)
    return time.perf_counter() - t0, job
