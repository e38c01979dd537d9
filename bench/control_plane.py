"""Control-plane benchmark: vpa on Ray Serve beside a bare FastAPI app doing the same write.

Run: `PYTHONPATH=. .venv/bin/python bench/control_plane.py [--quick] [--jobs N]` (or
`make bench`). A script, never a test. It starts everything it needs on loopback and stops
it at the end:

- a media server (tests/fixtures/media.py, in a subprocess) serving a generated 1-second clip;
- the bare baseline: a FastAPI app on uvicorn (in a subprocess, another port) whose
  `POST /api/v1/jobs/` validates `storage.schemas.JobCreate` and inserts one row with
  `storage.repository.JobRepository.create_job` into its own SQLite file (WAL), and whose
  `/ws/jobs/broadcast` sends an in-process message to every socket on each such write;
- Ray, Serve and vpa (`serve_app.app_from_settings`) with a temp SQLite database and
  artifact directory.

Figures, each beside the baseline's and the ratio vpa / baseline:
1. submission latency p50/p99 with 16 concurrent HTTP clients;
2. jobs completed per second with N queued audio_extraction jobs of the 1-second clip
   (baseline: the same two stage functions in a plain process pool with the same
   concurrency), and the coordinator's dispatch overhead per job (floor: the bare app's
   insert time);
3. WebSocket update latency p50/p99 with 200 clients on `/ws/jobs/broadcast`, from the
   event's server timestamp (`data.updated_at`) to receipt (baseline: the same write
   timings replayed against the bare app).

The markdown table is printed and written to bench/README-figures.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/control_plane.py` without PYTHONPATH
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

# Module level: FastAPI resolves the baseline's (string) annotations from module globals.
from fastapi import WebSocket, WebSocketDisconnect  # noqa: E402

from bench.common import serve_media, tree_text  # noqa: E402
from pipeline.options import FetchOptions, StageOptions  # noqa: E402
from pipeline.stages import StageInput, run_stage  # noqa: E402
from pipeline.types import CancelToken  # noqa: E402
from storage.schemas import JobCreate  # noqa: E402

NAMESPACE = "vpa-bench"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
FIGURES_FILE = ROOT / "bench" / "README-figures.md"


# ============================================================================ small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation (numpy's default); NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_ts(value: str) -> float:
    """ISO 8601 (with "Z") to epoch seconds."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> dict[tuple[int, str], tuple[str, float]]:
    """CPU seconds used so far by every process on the machine, named: this benchmark's own
    processes by role (Ray sets its workers' titles: "ray::JobCoordinatorActor", ...),
    everything else (other users of the machine) as "outside this benchmark". A process's
    reaped children (ffmpeg under a stage worker, the pool under the driver) count with it."""
    procs: dict[int, tuple[int, str, float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        f = stat[stat.rfind(")") + 2 :].split()
        own = (int(f[11]) + int(f[12])) / _TICKS
        children = (int(f[13]) + int(f[14])) / _TICKS
        procs[int(entry.name)] = (int(f[1]), cmd.strip(), own, children)
    mine = {os.getpid()}
    grew = True
    while grew:
        new = {pid for pid, (ppid, *_) in procs.items() if ppid in mine and pid not in mine}
        mine |= new
        grew = bool(new)
    out: dict[tuple[int, str], tuple[str, float]] = {}
    for pid, (_, cmd, own, children) in procs.items():
        if pid not in mine:
            out[(pid, "all")] = ("outside this benchmark", own + children)
        elif pid == os.getpid():
            out[(pid, "own")] = ("bench driver + clients", own)
            out[(pid, "children")] = ("process pool + its ffmpeg", children)
        else:
            out[(pid, "all")] = (_process_name(pid, cmd), own + children)
    return out


def _process_name(pid: int, cmd: str) -> str:
    if pid == os.getpid():
        return "bench driver + clients"
    if cmd.startswith("ray::"):
        name = cmd.split()[0]
        if name.startswith("ray::vpa-") or name in {"ray::IDLE", "ray::run_stage_task"}:
            return "Ray stage workers (incl. start-up, ffmpeg)"
        return name
    roles = {
        "--serve-baseline": "bare app (uvicorn)",
        "--serve-media": "media server",
        "ffmpeg": "ffmpeg",
        "raylet": "raylet",
        "gcs_server": "gcs_server",
        "multiprocessing": "process pool workers",
    }
    return next((role for key, role in roles.items() if key in cmd), "other Ray daemons")


def cpu_by_name(
    before: dict[tuple[int, str], tuple[str, float]],
    after: dict[tuple[int, str], tuple[str, float]],
) -> str:
    """CPU seconds per process name between two snapshots, largest first."""
    totals: dict[str, float] = {}
    for key, (name, seconds) in after.items():
        used = seconds - before.get(key, (name, 0.0))[1]
        if used > 0:
            totals[name] = totals.get(name, 0.0) + used
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {sec:.1f}" for name, sec in ranked if sec >= 0.05)


def job_body(url: str) -> dict[str, Any]:
    body = {"youtube_url": url, "job_type": "audio_extraction"}
    JobCreate.model_validate(body)  # the same body both servers accept
    return body


async def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)


# ============================================================================ subprocesses


def create_baseline_app(database_url: str, default_max_retries: int) -> Any:
    """The bare FastAPI app: validate `JobCreate`, `create_job` one row, broadcast it."""
    from fastapi import FastAPI

    from storage.db import create_db_engine, init_db
    from storage.repository import JobRepository
    from storage.schemas import JobPublic

    engine = create_db_engine(database_url)
    init_db(engine)
    repo = JobRepository(engine)
    app = FastAPI(title="bare baseline")
    subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
    insert_s: list[float] = []

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/api/v1/jobs/", status_code=201, response_model=JobPublic)
    async def create_job(body: JobCreate) -> Any:
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        job, _ = await asyncio.to_thread(
            repo.create_job, body, default_max_retries=default_max_retries, now=now
        )
        insert_s.append(time.perf_counter() - t0)
        job_id = str(job.id)
        # The shape of vpa's `job_update` (actors/messages.py), so both send similar bytes.
        message = {
            "type": "job_update",
            "job_id": job_id,
            "seq": 1,
            "event": "created",
            "data": {
                "id": job_id,
                "status": "pending",
                "progress": 0.0,
                "stage": None,
                "message": "Job created",
                "event": "created",
                "event_data": {"job_type": body.job_type.value, "priority": body.priority},
                "updated_at": now.isoformat().replace("+00:00", "Z"),
                "error_message": None,
                "error_code": None,
                "retry_count": 0,
                "video_title": None,
            },
        }
        for queue in list(subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)
        return job

    @app.get("/bench/insert-seconds")
    async def insert_seconds() -> list[float]:
        return insert_s

    @app.post("/bench/reset")
    async def reset() -> dict[str, int]:
        n = len(insert_s)
        insert_s.clear()
        return {"cleared": n}

    @app.websocket("/ws/jobs/broadcast")
    async def broadcast(ws: WebSocket) -> None:
        await ws.accept()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=256)
        subscribers.add(queue)

        async def pump() -> None:
            while True:
                message = await queue.get()
                if message is None:
                    return
                await ws.send_json(message)

        async def drain() -> None:
            while True:
                await ws.receive_text()

        try:
            await ws.send_json({"type": "connected", "channel": "broadcast"})
            tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(drain())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            subscribers.discard(queue)

    return app


def serve_baseline(port: int, database_url: str, default_max_retries: int) -> None:
    """Child process: the bare app on uvicorn."""
    import uvicorn

    app = create_baseline_app(database_url, default_max_retries)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def child(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ============================================================================ figure 1: submit


@dataclasses.dataclass
class SubmitRun:
    latencies: list[float]
    wall_s: float
    ids: list[str]
    errors: list[str]
    started_at: float  # epoch seconds of the first timed request

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else math.nan


async def submit_load(
    base_url: str, body: dict[str, Any], total: int, workers: int, warmup_per_worker: int = 0
) -> SubmitRun:
    """`workers` clients, each with its own AsyncClient, POST the body `total` times in all."""
    remaining = [total]
    latencies: list[float] = []
    ids: list[str] = []
    errors: list[str] = []
    warmed = 0
    all_warm = asyncio.Event()
    start_box: list[float] = []

    async def post(client: httpx.AsyncClient) -> tuple[float, dict[str, Any] | None]:
        t0 = time.perf_counter()
        try:
            r = await client.post("/api/v1/jobs/", json=body)
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return time.perf_counter() - t0, None
        elapsed = time.perf_counter() - t0
        if r.status_code != 201:
            errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
            return elapsed, None
        return elapsed, dict(r.json())

    async def worker() -> None:
        nonlocal warmed
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=120.0, limits=limits) as client:
            for _ in range(warmup_per_worker):
                _, job = await post(client)
                if job is not None:
                    ids.append(job["id"])
            warmed += 1
            if warmed == workers:
                start_box.append(time.time())
                all_warm.set()
            await all_warm.wait()
            while remaining[0] > 0:
                remaining[0] -= 1
                elapsed, job = await post(client)
                if job is not None:
                    latencies.append(elapsed)
                    ids.append(job["id"])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    wall = time.perf_counter() - t0
    if warmup_per_worker:
        wall = time.time() - start_box[0]
    return SubmitRun(latencies, wall, ids, errors, start_box[0] if start_box else time.time())


# ============================================================================ vpa service


class Service:
    """Ray + Serve + vpa, and direct reads of its SQLite database for bookkeeping."""

    def __init__(
        self,
        tmp: Path,
        max_concurrent_jobs: int,
        num_cpus: int | None,
        ingress_replicas: int,
        with_models: bool,
    ) -> None:
        import ray
        from ray import serve

        from config.settings import Settings
        from serve_app import absolute_paths, app_from_settings
        from storage.db import create_db_engine

        self.settings = absolute_paths(
            Settings(
                _env_file=None,
                database_url=f"sqlite:///{tmp / 'vpa.db'}",
                artifact_dir=str(tmp / "artifacts"),
                log_file=str(tmp / "vpa.log"),
                allow_private_urls=True,
                max_concurrent_jobs=max_concurrent_jobs,
                ray_namespace=NAMESPACE,
            )
        )
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.port = free_port()
        ray.init(
            num_cpus=num_cpus,
            namespace=NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        )
        self.ray_cpus = float(ray.cluster_resources().get("CPU", 0))
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        # Only the arguments this tree's app_from_settings takes: by default no Whisper or
        # NLP model deployments (audio_extraction jobs never call them).
        params = inspect.signature(app_from_settings).parameters
        options: dict[str, Any] = {}
        if ingress_replicas != 1:
            options["ingress_replicas"] = ingress_replicas
        if "with_models" in params:
            options["with_models"] = with_models
        app = app_from_settings(self.settings, **options)
        serve.run(app, name="vpa", route_prefix="/")
        self.deployments = sorted(serve.status().applications["vpa"].deployments)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.engine = create_db_engine(self.settings.resolved_database_url())

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def coordinator(self) -> Any:
        import ray

        from actors import job_coordinator

        # One coordinator per database (coordinator_name), or one fixed name in older trees.
        name_of = getattr(job_coordinator, "coordinator_name", None)
        name = name_of(self.settings) if name_of else "vpa-coordinator"
        return ray.get_actor(name, namespace=NAMESPACE)

    def overhead_samples(self) -> list[float]:
        import ray

        return list(ray.get(self.coordinator().overhead_samples.remote()))

    def statuses(self, ids: Sequence[str]) -> dict[str, int]:
        from sqlmodel import Session, col, func, select

        from storage.models import Job

        counts: dict[str, int] = {}
        uuids = [uuid.UUID(i) for i in ids]
        with Session(self.engine) as session:
            for chunk in range(0, len(uuids), 500):
                stmt = (
                    select(Job.status, func.count())
                    .where(col(Job.id).in_(uuids[chunk : chunk + 500]))
                    .group_by(col(Job.status))
                )
                for status, n in session.exec(stmt).all():
                    key = str(getattr(status, "value", status))
                    counts[key] = counts.get(key, 0) + int(n)
        return counts

    def jobs(self, ids: Sequence[str]) -> list[Any]:
        from sqlmodel import Session, col, select

        from storage.models import Job

        uuids = [uuid.UUID(i) for i in ids]
        out: list[Any] = []
        with Session(self.engine) as session:
            for chunk in range(0, len(uuids), 500):
                stmt = select(Job).where(col(Job.id).in_(uuids[chunk : chunk + 500]))
                out.extend(session.exec(stmt).all())
        return out

    def events(self, ids: Sequence[str]) -> list[Any]:
        from sqlmodel import Session, col, select

        from storage.models import JobEvent

        uuids = [uuid.UUID(i) for i in ids]
        out: list[Any] = []
        with Session(self.engine) as session:
            for chunk in range(0, len(uuids), 500):
                stmt = select(JobEvent).where(col(JobEvent.job_id).in_(uuids[chunk : chunk + 500]))
                out.extend(session.exec(stmt).all())
        return out

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
        import ray
        from ray import serve

        with contextlib.suppress(Exception):
            self.engine.dispose()
        with contextlib.suppress(Exception):
            serve.shutdown()
        with contextlib.suppress(Exception):
            ray.shutdown()


class Stalled(RuntimeError):
    def __init__(self, message: str, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


# ============================================================================ figure 2: jobs


def _noop_progress(fraction: float, message: str) -> None:
    return None


def _pool_init() -> None:
    import pipeline.media.audio
    import pipeline.media.fetch

    del pipeline  # imported for their side effect: a warm worker


def baseline_job(url: str, work_dir: str, job_id: str) -> tuple[float, float]:
    """One audio_extraction job without Ray: the same two stage functions, in order."""
    t0 = time.time()
    inp = StageInput(
        job_id=job_id,
        url=url,
        options=StageOptions(),
        work_dir=work_dir,
        checkpoints={},
        fetch_options=FetchOptions(allow_private_urls=True),
    )
    fetched = run_stage("fetch", inp, _noop_progress, CancelToken())
    audio_in = dataclasses.replace(inp, checkpoints={"fetch": fetched.checkpoint})
    run_stage("audio", audio_in, _noop_progress, CancelToken())
    return t0, time.time()


def run_pool_baseline(
    url: str, work_root: Path, jobs: int, concurrency: int, warm: threading.Event | None = None
) -> dict[str, Any]:
    """`jobs` jobs through a pool of `concurrency` warmed processes; sets `warm` when the
    workers are warm and the timed jobs are about to be submitted."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=concurrency, mp_context=ctx, initializer=_pool_init
    ) as pool:
        warm_jobs = [
            pool.submit(baseline_job, url, str(work_root / f"warm-{i}"), f"warm-{i}")
            for i in range(concurrency)
        ]
        for f in warm_jobs:
            f.result()
        if warm is not None:
            warm.set()
        futures = []
        for _ in range(jobs):
            jid = uuid.uuid4().hex
            futures.append(pool.submit(baseline_job, url, str(work_root / jid), jid))
        spans = [f.result() for f in futures]
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    return {
        "jobs": jobs,
        "wall_s": last - first,
        "rate": jobs / (last - first),
        "job_s": [e - s for s, e in spans],
    }


# ============================================================================ figure 3: WS


@dataclasses.dataclass
class WsResult:
    latencies: list[float]
    received: int  # job_update deliveries of the measured jobs, all clients
    expected: int  # clients x events
    duplicates: int
    out_of_order: int
    closed_early: list[str]
    missing: list[str]  # "job seq (event) missed by N clients", most missed first


class WsClients:
    """N clients on a broadcast URL, recording (job_id, seq, receipt - updated_at)."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.n = n
        self.records: list[list[tuple[str, int, float]]] = [[] for _ in range(n)]
        self.closed_early: list[str] = []
        self._sockets: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        sem = asyncio.Semaphore(20)
        ready: list[asyncio.Future[None]] = []

        async def one(index: int, ready_fut: asyncio.Future[None]) -> None:
            async with sem:
                ws = await connect(self.url, open_timeout=60, max_size=2**22, max_queue=None)
                first = json.loads(await ws.recv())
                if first.get("type") != "connected":
                    raise RuntimeError(f"unexpected first message {first}")
                self._sockets.append(ws)
            ready_fut.set_result(None)
            sink = self.records[index]
            try:
                async for raw in ws:
                    received = time.time()
                    msg = json.loads(raw)
                    if msg.get("type") == "job_update":
                        updated = parse_ts(msg["data"]["updated_at"])
                        sink.append((msg["job_id"], int(msg["seq"]), received - updated))
            except Exception as exc:
                if not self._stopping:
                    self.closed_early.append(f"client {index}: {type(exc).__name__}: {exc}")
            else:
                if not self._stopping:
                    self.closed_early.append(f"client {index}: closed by server {ws.close_code}")

        loop = asyncio.get_running_loop()
        for i in range(self.n):
            fut: asyncio.Future[None] = loop.create_future()
            ready.append(fut)
            self._tasks.append(asyncio.create_task(one(i, fut)))
        waiter = asyncio.gather(*ready)
        watch: list[asyncio.Future[Any]] = [waiter, *self._tasks]
        done, _ = await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in self._tasks if t in done and t.exception() is not None]
        if failed:
            await self.close()
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            raise RuntimeError(f"a WebSocket client failed: {failed[0].exception()!r}")
        await waiter

    async def close(self) -> None:
        self._stopping = True
        await asyncio.gather(*(ws.close() for ws in self._sockets), return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def delivered(self, job_ids: set[str]) -> int:
        return sum(1 for sink in self.records for job_id, _, _ in sink if job_id in job_ids)

    async def settle(self, job_ids: set[str], expected: int, quiet_s: float, max_s: float) -> None:
        """Wait for trailing deliveries: until all `expected` arrived, nothing new came for
        `quiet_s`, or `max_s` passed."""
        deadline = time.monotonic() + max_s
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_count = self.delivered(job_ids)
            if now_count >= expected:
                return
            if now_count != last:
                last, last_change = now_count, time.monotonic()
            elif time.monotonic() - last_change > quiet_s:
                return
            await asyncio.sleep(0.25)

    def result(self, expected: dict[str, dict[int, str]]) -> WsResult:
        """`expected`: job id -> {seq: event type} every client should have received."""
        latencies: list[float] = []
        received = duplicates = out_of_order = 0
        missing: dict[tuple[str, int], int] = {}
        for sink in self.records:
            seen: set[tuple[str, int]] = set()
            last_seq: dict[str, int] = {}
            for job_id, seq, latency in sink:
                if job_id not in expected:
                    continue
                if (job_id, seq) in seen:
                    duplicates += 1
                    continue
                seen.add((job_id, seq))
                if seq < last_seq.get(job_id, 0):
                    out_of_order += 1
                last_seq[job_id] = seq
                received += 1
                latencies.append(latency)
            for job_id, events in expected.items():
                for seq in events:
                    if (job_id, seq) not in seen:
                        missing[(job_id, seq)] = missing.get((job_id, seq), 0) + 1
        total = self.n * sum(len(events) for events in expected.values())
        described = [
            f"{job_id[:8]} seq {seq} ({expected[job_id][seq]}) missed by {n} clients"
            for (job_id, seq), n in sorted(missing.items(), key=lambda kv: -kv[1])
        ]
        return WsResult(
            latencies, received, total, duplicates, out_of_order, self.closed_early, described
        )


async def replay_posts(base_url: str, body: dict[str, Any], offsets: Sequence[float]) -> list[str]:
    """POST once at each offset (seconds from now): the service's write timings, replayed."""
    loop = asyncio.get_running_loop()
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:

        async def post() -> None:
            r = await client.post("/api/v1/jobs/", json=body)
            r.raise_for_status()
            ids.append(r.json()["id"])

        start = loop.time()
        tasks = []
        for offset in offsets:
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post()))
        await asyncio.gather(*tasks)
    return ids


# ============================================================================ the run


@dataclasses.dataclass
class Row:
    figure: str
    vpa: str
    bare: str
    ratio: str


@dataclasses.dataclass
class Report:
    rows: list[Row] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    insert_s: list[float] = dataclasses.field(default_factory=list)
    ray_cpus: float | None = None
    deployments: list[str] = dataclasses.field(default_factory=list)

    def add(self, figure: str, vpa: str, bare: str, r: str) -> None:
        self.rows.append(Row(figure, vpa, bare, r))


def machine_text(args: argparse.Namespace, report: Report) -> list[str]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    import fastapi
    import ray
    import uvicorn

    ray_cpus = "?" if report.ray_cpus is None else f"{report.ray_cpus:g}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    deployed = ", ".join(report.deployments) or "?"
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem} memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"load average at the end {load} (other work on the machine shows in the CPU notes "
        "as 'outside this benchmark')",
        f"- versions: ray {ray.__version__}, fastapi {fastapi.__version__}, "
        f"uvicorn {uvicorn.__version__}",
        f"- vpa settings: MAX_CONCURRENT_JOBS={args.max_concurrent_jobs}, SQLite (WAL) in a temp "
        "dir, ALLOW_PRIVATE_URLS=true, other settings at their defaults (LOG_LEVEL=INFO, "
        f"PROGRESS_PERSIST_INTERVAL_S=0.5); {args.ingress_replicas} Ingress replica(s); "
        f"Serve deployments: {deployed}; Ray CPUs={ray_cpus}",
        f"- run: jobs={args.jobs}, submit clients={args.submit_clients} x "
        f"{args.submit_requests} requests, WebSocket clients={args.ws_clients}, "
        f"WebSocket batch={args.ws_jobs} jobs, submit URL mode={args.submit_url}"
        + (" (--quick)" if args.quick else ""),
    ]


async def run(args: argparse.Namespace, tmp: Path, report: Report) -> Service | None:
    from tests.fixtures.media import make_video

    media_root = tmp / "media"
    media_root.mkdir()
    make_video(media_root / "clip.mp4", duration_s=1.0)
    baseline_port = free_port()
    baseline_url = f"http://127.0.0.1:{baseline_port}"
    baseline_db = f"sqlite:///{tmp / 'baseline.db'}"

    with (
        child(["--serve-media", str(media_root)]) as media,
        child(["--serve-baseline", str(baseline_port), baseline_db, str(args.max_retries_default)]),
    ):
        assert media.stdout is not None
        media_base = media.stdout.readline().strip()
        if not media_base.startswith("http://"):
            raise RuntimeError("the media server did not start")
        clip_url = f"{media_base}/clip.mp4"
        submit_url = f"{media_base}/hang/clip.mp4" if args.submit_url == "hang" else clip_url
        await wait_http(f"{baseline_url}/health")
        log(f"media server {media_base}; baseline {baseline_url}")

        log("starting Ray, Serve and vpa ...")
        t0 = time.perf_counter()
        service = Service(
            tmp / "vpa",
            args.max_concurrent_jobs,
            args.num_cpus,
            args.ingress_replicas,
            args.with_models,
        )
        report.ray_cpus = service.ray_cpus
        report.deployments = service.deployments
        try:
            await wait_http(f"{service.base_url}/health", timeout_s=120)
            log(f"vpa healthy at {service.base_url} after {time.perf_counter() - t0:.1f} s")
            if "1" in args.figures:
                await figure_submit(args, service, baseline_url, submit_url, report)
            if "2" in args.figures:
                await figure_throughput(args, service, baseline_url, clip_url, tmp, report)
            if "3" in args.figures:
                await figure_ws(args, service, baseline_url, clip_url, tmp, report)
        except BaseException:
            with contextlib.suppress(Exception):
                report.problems.append("diagnostics at failure:\n" + await service.diagnostics())
            service.shutdown()
            raise
        return service


async def figure_submit(
    args: argparse.Namespace, service: Service, baseline_url: str, url: str, report: Report
) -> None:
    body = job_body(url)
    total = args.submit_clients * args.submit_requests
    log(f"figure 1: {args.submit_clients} clients x {args.submit_requests} POSTs to vpa ...")
    cpu0, t0 = cpu_snapshot(), time.perf_counter()
    vpa = await submit_load(service.base_url, body, total, args.submit_clients, warmup_per_worker=2)
    report.notes.append(
        f"CPU seconds by process during figure 1 on vpa ({time.perf_counter() - t0:.1f} s "
        f"wall, 2 cores): {cpu_by_name(cpu0, cpu_snapshot())}"
    )
    log(f"  vpa: {len(vpa.latencies)} ok, {len(vpa.errors)} errors, {vpa.rate:.0f} req/s")
    if vpa.errors:
        report.problems.append(f"figure 1: vpa answered {len(vpa.errors)} errors: {vpa.errors[:5]}")
    # Clean up: cancel what is still queued, let the running jobs finish.
    async with httpx.AsyncClient(base_url=service.base_url, timeout=60.0) as client:
        r = await client.delete("/api/v1/jobs/queue/clear")
        log(f"  queue clear -> {r.status_code} {r.text[:120]}")
    try:
        counts = await service.wait_terminal(vpa.ids, timeout_s=180, stall_s=90, label="fig1 drain")
        log(f"  figure 1 jobs drained: {counts}")
    except Stalled as exc:
        report.problems.append(f"figure 1 drain: {exc}\n{await service.diagnostics()}")

    log("figure 1: the same against the bare app ...")
    async with httpx.AsyncClient(base_url=baseline_url) as client:
        await client.post("/bench/reset")
    bare = await submit_load(baseline_url, body, total, args.submit_clients, warmup_per_worker=2)
    async with httpx.AsyncClient(base_url=baseline_url) as client:
        contended = list((await client.get("/bench/insert-seconds")).json())
        await client.post("/bench/reset")
    # The floor for the coordinator's overhead: create_job with no other writer, as the
    # coordinator (the single writer) sees it.
    seq = await submit_load(baseline_url, body, args.floor_requests, 1, warmup_per_worker=5)
    async with httpx.AsyncClient(base_url=baseline_url) as client:
        report.insert_s = list((await client.get("/bench/insert-seconds")).json())[5:]
    report.notes.append(
        f"bare app `create_job` time, server side: with 16 concurrent clients "
        f"({len(contended)} inserts) p50 {ms(percentile(contended, 50))}, p99 "
        f"{ms(percentile(contended, 99))}; one client at a time ({len(report.insert_s)} inserts) "
        f"p50 {ms(percentile(report.insert_s, 50))}, p99 {ms(percentile(report.insert_s, 99))} "
        f"(its POST round trip p50 {ms(percentile(seq.latencies, 50))})"
    )
    log(f"  bare: {len(bare.latencies)} ok, {len(bare.errors)} errors, {bare.rate:.0f} req/s")
    if bare.errors:
        report.problems.append(f"figure 1: bare app errors: {bare.errors[:5]}")
    n = args.submit_clients
    for q in (50, 99):
        a, b = percentile(vpa.latencies, q), percentile(bare.latencies, q)
        report.add(f"1. submit latency p{q} ({n} clients)", ms(a), ms(b), ratio(a, b))
    report.add(
        f"1. submissions per second ({n} clients)",
        f"{vpa.rate:.0f}/s",
        f"{bare.rate:.0f}/s",
        ratio(vpa.rate, bare.rate),
    )


async def figure_throughput(
    args: argparse.Namespace,
    service: Service,
    baseline_url: str,
    clip_url: str,
    tmp: Path,
    report: Report,
) -> None:
    body = job_body(clip_url)
    log(f"figure 2: warm-up of {args.max_concurrent_jobs} jobs ...")
    warm = await submit_load(service.base_url, body, args.max_concurrent_jobs, 1)
    await service.wait_terminal(warm.ids, timeout_s=120, label="warm-up")
    n_before = len(await asyncio.to_thread(service.overhead_samples))

    log(f"figure 2: submitting {args.jobs} audio_extraction jobs to vpa ...")
    cpu0 = cpu_snapshot()
    t_submit = time.time()
    sub = await submit_load(service.base_url, body, args.jobs, args.submit_clients)
    log(f"  submitted {len(sub.ids)} in {time.time() - t_submit:.1f} s ({len(sub.errors)} errors)")
    if sub.errors:
        report.problems.append(f"figure 2: {len(sub.errors)} submissions failed: {sub.errors[:5]}")
    stalled: Stalled | None = None
    try:
        counts = await service.wait_terminal(
            sub.ids, timeout_s=args.timeout, stall_s=120, label="figure 2"
        )
    except Stalled as exc:
        stalled = exc
        counts = exc.counts
        report.problems.append(f"figure 2: {exc}\n{await service.diagnostics()}")
    report.notes.append(
        f"CPU seconds by process during figure 2 on vpa ({time.time() - t_submit:.0f} s wall, "
        f"2 cores): {cpu_by_name(cpu0, cpu_snapshot())}"
    )
    samples = (await asyncio.to_thread(service.overhead_samples))[n_before:]
    jobs = await asyncio.to_thread(service.jobs, sub.ids)
    completed = [j for j in jobs if str(getattr(j.status, "value", j.status)) == "completed"]
    failed = [j for j in jobs if str(getattr(j.status, "value", j.status)) == "failed"]
    if failed:
        errs = sorted({f"{j.error_code}: {j.error_message}" for j in failed})
        report.problems.append(f"figure 2: {len(failed)} jobs failed: {errs[:5]}")
    starts = [s for j in jobs if (s := epoch(j.started_at)) is not None]
    ends = [e for j in completed if (e := epoch(j.completed_at)) is not None]
    vpa_rate = vpa_rate_submit = math.nan
    if completed and starts and ends:
        vpa_rate = len(completed) / (max(ends) - min(starts))
        vpa_rate_submit = len(completed) / (max(ends) - t_submit)
        log(
            f"  vpa: {len(completed)} completed, {vpa_rate:.2f} jobs/s (first start -> last "
            f"completion), {vpa_rate_submit:.2f} jobs/s from first submit; counts {counts}"
        )
    per_stage: dict[str, list[float]] = {}
    for j in completed:
        for stage, seconds in (j.stage_timings or {}).items():
            per_stage.setdefault(stage, []).append(float(seconds))
    if per_stage:
        report.notes.append(
            "figure 2, vpa stage time (submit of the Ray task to its result, coordinator's "
            "view): "
            + "; ".join(
                f"{st} p50 {ms(percentile(v, 50))}, p99 {ms(percentile(v, 99))}"
                for st, v in per_stage.items()
            )
        )

    log(f"figure 2: the same {args.jobs} jobs in a process pool of {args.max_concurrent_jobs} ...")
    cpu0 = cpu_snapshot()
    pool = await asyncio.to_thread(
        run_pool_baseline, clip_url, tmp / "pool", args.jobs, args.max_concurrent_jobs
    )
    report.notes.append(
        f"CPU seconds by process during figure 2 on the pool ({pool['wall_s']:.0f} s of jobs): "
        f"{cpu_by_name(cpu0, cpu_snapshot())}"
    )
    log(f"  pool: {pool['rate']:.2f} jobs/s over {pool['wall_s']:.1f} s")
    report.notes.append(
        f"figure 2, bare pool time per job (fetch+audio): p50 {ms(percentile(pool['job_s'], 50))}"
        f", p99 {ms(percentile(pool['job_s'], 99))}"
    )
    done_txt = "" if stalled is None and len(completed) == args.jobs else " (incomplete)"
    report.add(
        f"2. jobs/s, {args.jobs} queued, first start → last completion",
        f"{vpa_rate:.2f}/s{done_txt}",
        f"{pool['rate']:.2f}/s",
        ratio(vpa_rate, pool["rate"]),
    )
    report.add(
        f"2. jobs/s, {args.jobs} queued, first submit → last completion",
        f"{vpa_rate_submit:.2f}/s{done_txt}",
        f"{pool['rate']:.2f}/s",
        ratio(vpa_rate_submit, pool["rate"]),
    )
    insert_s = report.insert_s
    for q in (50, 99):
        a, b = percentile(samples, q), percentile(insert_s, q)
        report.add(
            f"2. coordinator overhead per job p{q} ({len(samples)} jobs)",
            ms(a),
            f"{ms(b)} (1 insert)",
            ratio(a, b),
        )


async def figure_ws(
    args: argparse.Namespace,
    service: Service,
    baseline_url: str,
    clip_url: str,
    tmp: Path,
    report: Report,
) -> None:
    body = job_body(clip_url)
    n = args.ws_clients
    log(f"figure 3: connecting {n} WebSocket clients to vpa ...")
    clients = WsClients(f"{service.ws_url}/ws/jobs/broadcast", n)
    await clients.connect()
    await asyncio.sleep(1.0)  # the replica's listener re-polls with the new subscribers
    log(f"  connected; submitting {args.ws_jobs} jobs one after another ...")
    cpu0, t0 = cpu_snapshot(), time.perf_counter()
    sub = await submit_load(service.base_url, body, args.ws_jobs, 1)
    try:
        await service.wait_terminal(sub.ids, timeout_s=300, stall_s=90, label="figure 3")
    except Stalled as exc:
        report.problems.append(f"figure 3: {exc}\n{await service.diagnostics()}")
    events = await asyncio.to_thread(service.events, sub.ids)
    expected: dict[str, dict[int, str]] = {job_id: {} for job_id in sub.ids}
    for ev in events:
        expected[str(ev.job_id)][int(ev.seq)] = str(getattr(ev.type, "value", ev.type))
    await clients.settle(set(sub.ids), n * len(events), quiet_s=5.0, max_s=30.0)
    report.notes.append(
        f"CPU seconds by process during figure 3 on vpa ({time.perf_counter() - t0:.1f} s "
        f"wall, 2 cores): {cpu_by_name(cpu0, cpu_snapshot())}"
    )
    await clients.close()
    vpa = clients.result(expected)
    log(
        f"  vpa: {vpa.received}/{vpa.expected} deliveries, {len(events)} events; "
        f"p50 {ms(percentile(vpa.latencies, 50))} p99 {ms(percentile(vpa.latencies, 99))}"
    )
    check_ws("vpa", vpa, report)

    # Baseline: one write (and one broadcast) at each of the service's event times.
    stamps = sorted(t for ev in events if (t := epoch(ev.created_at)) is not None)
    offsets = [t - stamps[0] for t in stamps] if stamps else []
    log(f"figure 3: {n} clients on the bare app; replaying {len(offsets)} writes ...")
    bare_clients = WsClients(f"{baseline_url.replace('http://', 'ws://')}/ws/jobs/broadcast", n)
    await bare_clients.connect()
    await asyncio.sleep(1.0)
    # The same media work beside it: the batch's jobs in the process pool of figure 2.
    warm = threading.Event()
    pool = asyncio.create_task(
        asyncio.to_thread(
            run_pool_baseline,
            clip_url,
            tmp / "pool-ws",
            len(sub.ids),
            args.max_concurrent_jobs,
            warm,
        )
    )
    await asyncio.to_thread(warm.wait, 120)
    bare_ids = await replay_posts(baseline_url, body, offsets)
    await pool
    await bare_clients.settle(set(bare_ids), n * len(bare_ids), quiet_s=5.0, max_s=30.0)
    await bare_clients.close()
    bare = bare_clients.result({job_id: {1: "created"} for job_id in bare_ids})
    log(
        f"  bare: {bare.received}/{bare.expected} deliveries; p50 "
        f"{ms(percentile(bare.latencies, 50))} p99 {ms(percentile(bare.latencies, 99))}"
    )
    check_ws("bare", bare, report)
    for q in (50, 99):
        a, b = percentile(vpa.latencies, q), percentile(bare.latencies, q)
        report.add(f"3. WebSocket update latency p{q} ({n} clients)", ms(a), ms(b), ratio(a, b))
    span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    report.notes.append(
        f"figure 3 load: {len(events)} events of {len(sub.ids)} jobs over {span:.1f} s, "
        f"{vpa.received} vpa deliveries (of {vpa.expected} expected), {bare.received} bare "
        f"deliveries (of {bare.expected})"
    )


def check_ws(name: str, res: WsResult, report: Report) -> None:
    if res.received != res.expected:
        report.problems.append(
            f"figure 3 ({name}): {res.expected - res.received} of {res.expected} expected "
            f"job_update deliveries never arrived (waited until 5 s without a new one): "
            f"{'; '.join(res.missing[:6])}"
        )
    if res.duplicates or res.out_of_order:
        report.problems.append(
            f"figure 3 ({name}): {res.duplicates} duplicate and {res.out_of_order} "
            "out-of-order deliveries"
        )
    if res.closed_early:
        report.problems.append(
            f"figure 3 ({name}): {len(res.closed_early)} clients closed early: "
            f"{res.closed_early[:3]}"
        )


HOW = """\
How each figure is measured (ratio = vpa ÷ bare; above 1 means vpa takes longer, or for
jobs/s below 1 means vpa completes fewer):
1. Submit latency: {clients} workers, each its own `httpx.AsyncClient` (one keep-alive
   connection), POST `/api/v1/jobs/` with `{{"youtube_url": <1-s clip on the loopback media
   server>, "job_type": "audio_extraction"}}` back to back, {requests} timed requests each
   after 2 untimed warm-up requests; time from send to the 201 response. vpa: Serve proxy →
   Ingress replica (URL policy check) → coordinator actor (`create_job`, publish, queued
   transition, dispatch) → back. Bare: FastAPI on uvicorn, `JobCreate` validation, one
   `JobRepository.create_job` in `asyncio.to_thread`, own SQLite file (WAL). With the default
   `--submit-url hang` the jobs point at the media server's `/hang/clip.mp4` (answers after
   10 s), so the 3 job slots sit idle in I/O and the figure is the control plane's alone,
   not ffmpeg competing for the 2 cores; the queue is cleared afterwards.
2. Throughput: {jobs} audio_extraction jobs of the 1-s clip submitted as fast as 16 clients
   can (the queue cannot be paused), after a warm-up of MAX_CONCURRENT_JOBS jobs; jobs/s =
   completed jobs ÷ (last `completed_at` - first `started_at`), and ÷ (last `completed_at`
   - first submit). Bare: the same two stage functions (`run_stage("fetch")` then
   `run_stage("audio")`) in a `ProcessPoolExecutor` of MAX_CONCURRENT_JOBS spawned workers
   (warmed with one job each), first job start → last job end.
   Coordinator overhead: `overhead_samples()` of the coordinator actor for these jobs:
   seconds from a slot being taken by the dispatcher (after the previous job released it)
   to the job's first `stage_started` written (2 DB writes, 1 read, the publishes); the
   floor beside it is the bare app's server-side `create_job` time (one insert of a job
   and its event) with one client at a time, as the coordinator is the only writer.
3. WebSocket latency: {ws} clients (`websockets`, one asyncio process) on
   `/ws/jobs/broadcast`; {ws_jobs} jobs submitted one after another; each `job_update` of
   those jobs is timed from its `data.updated_at` (the server's clock when the event was
   written) to its receipt. vpa's path: coordinator DB write → ProgressHub actor →
   the replica's long-poll listener → per-socket queues → Serve proxy → client. Bare: one
   POST (insert + in-process broadcast to every socket) at each of vpa's event times
   (same count, same offsets), same clients and measurement, while the batch's jobs run
   in the figure-2 process pool beside it (so both sides share the 2 cores with ffmpeg and
   yt-dlp; the pool finishes its jobs sooner than vpa, so its load is more bunched).
"""


def write_markdown(args: argparse.Namespace, report: Report) -> str:
    lines = [
        "# Control-plane figures (bench/control_plane.py)",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"`{' '.join(['bench/control_plane.py', *sys.argv[1:]])}` on {tree_text()}",
        "",
        *machine_text(args, report),
        "",
        "| figure | vpa (Ray Serve) | bare FastAPI + uvicorn | ratio vpa ÷ bare |",
        "|---|---|---|---|",
        *(f"| {r.figure} | {r.vpa} | {r.bare} | {r.ratio} |" for r in report.rows),
        "",
        HOW.format(
            clients=args.submit_clients,
            requests=args.submit_requests,
            jobs=args.jobs,
            ws=args.ws_clients,
            ws_jobs=args.ws_jobs,
        ),
    ]
    if report.notes:
        lines += ["Other figures:", *(f"- {n}" for n in report.notes), ""]
    lines += ["Problems seen:" if report.problems else "Problems seen: none."]
    lines += [f"- {p}" for p in report.problems]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--jobs", type=int, default=1000, help="jobs queued for figure 2")
    p.add_argument("--quick", action="store_true", help="smoke run: 50 jobs, 50 WS clients")
    p.add_argument("--figures", default="123", help="which figures to run, e.g. 13")
    p.add_argument("--max-concurrent-jobs", type=int, default=3)
    p.add_argument("--submit-clients", type=int, default=16)
    p.add_argument("--submit-requests", type=int, default=40, help="timed POSTs per client")
    p.add_argument("--floor-requests", type=int, default=200, help="sequential bare POSTs")
    p.add_argument("--ws-clients", type=int, default=200)
    p.add_argument("--ws-jobs", type=int, default=20, help="jobs whose updates are timed")
    p.add_argument("--submit-url", choices=("hang", "clip"), default="hang")
    p.add_argument("--ingress-replicas", type=int, default=1)
    p.add_argument(
        "--with-models",
        action="store_true",
        help="also deploy the Transcriber and Analyzer (unused by audio_extraction jobs)",
    )
    p.add_argument("--num-cpus", type=int, default=None, help="Ray CPUs (default: detected)")
    p.add_argument("--timeout", type=float, default=1800.0, help="figure 2 limit, seconds")
    p.add_argument("--out", type=Path, default=FIGURES_FILE, help="markdown output file")
    p.add_argument("--no-write", action="store_true", help="do not write the markdown file")
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--serve-media", metavar="ROOT", help=argparse.SUPPRESS)
    p.add_argument("--serve-baseline", nargs=3, metavar="X", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.jobs = min(args.jobs, 50)
        args.ws_clients = min(args.ws_clients, 50)
        args.submit_requests = min(args.submit_requests, 8)
        args.ws_jobs = min(args.ws_jobs, 8)
        args.floor_requests = min(args.floor_requests, 50)
    args.max_retries_default = 3
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_media:
        serve_media(args.serve_media)
        return 0
    if args.serve_baseline:
        port, url, retries = args.serve_baseline
        serve_baseline(int(port), url, int(retries))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="vpa-bench-"))
    report = Report()
    service: Service | None = None
    failed: BaseException | None = None
    log(f"temp dir {tmp}")
    try:
        service = asyncio.run(run(args, tmp, report))
    except BaseException as exc:  # report what was measured, then re-raise
        failed = exc
        report.problems.append(f"benchmark aborted: {type(exc).__name__}: {exc}")
    finally:
        if service is not None:
            service.shutdown()
    text = write_markdown(args, report)
    print("\n" + text, flush=True)
    if not args.no_write:
        args.out.write_text(text, encoding="utf-8")
        log(f"wrote {args.out}")
    if args.keep_tmp:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None and not isinstance(failed, Exception):
        raise failed
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
