"""What the control-plane benchmark compares vpa with: a bare FastAPI app on uvicorn doing
the same database write (a child process: `python -m bench.baseline PORT DATABASE_URL
MAX_RETRIES`), and the same stage functions in a plain process pool. Neither has a queue,
actor hops, a durable event log or fan-out across processes: the floor vpa is measured
against."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Module level: FastAPI resolves the app's (string) annotations from module globals.
from fastapi import WebSocket, WebSocketDisconnect

from pipeline.options import FetchOptions, StageOptions
from pipeline.stages import StageInput, run_stage
from pipeline.types import CancelToken
from storage.schemas import JobCreate

Subscribers = set[asyncio.Queue[dict[str, Any] | None]]


def job_message(job_id: str, body: JobCreate, now: datetime) -> dict[str, Any]:
    """The shape of vpa's `job_update` (actors/messages.py), so both send similar bytes."""
    return {
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


async def serve_socket(ws: WebSocket, subscribers: Subscribers) -> None:
    """One broadcast client: every message published while it is connected."""
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
    subscribers: Subscribers = set()
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
        message = job_message(str(job.id), body, now)
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
        await serve_socket(ws, subscribers)

    return app


def serve_baseline(port: int, database_url: str, default_max_retries: int) -> None:
    """Child process: the bare app on uvicorn."""
    import uvicorn

    app = create_baseline_app(database_url, default_max_retries)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ============================================================================ the pool


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


if __name__ == "__main__":
    serve_baseline(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
