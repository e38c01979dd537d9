"""The control-plane benchmark's clients: HTTP submitters (many at once, or replaying given
write times) and WebSocket listeners that time each update from its server timestamp."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.common import parse_ts


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
