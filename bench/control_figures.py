"""The control-plane benchmark's three figures, each measured on vpa and on the bare
baseline (bench/baseline.py) and added to a `Report` as one row per figure."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import httpx

from bench.baseline import run_pool_baseline
from bench.clients import SubmitRun, submit_load
from bench.common import epoch, log
from bench.cpu import Snapshot, ranked, snapshot_all, used_by_name, wait_until_idle
from bench.service import Service, Stalled
from bench.stats import ms, percentile, ratio
from storage.schemas import JobCreate

STAGE_WORKERS = "Ray stage workers (incl. start-up, ffmpeg)"


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


def job_body(url: str) -> dict[str, Any]:
    body = {"youtube_url": url, "job_type": "audio_extraction"}
    JobCreate.model_validate(body)  # the same body both servers accept
    return body


def cpu_snapshot() -> Snapshot:
    return snapshot_all(STAGE_WORKERS)


def cpu_note(during: str, before: Snapshot) -> str:
    """Where the CPU went since `before`, by process (others on the machine included)."""
    return f"CPU seconds by process during {during}: {ranked(used_by_name(before, cpu_snapshot()))}"


# ============================================================================ figure 1: submit


async def figure_submit(
    args: argparse.Namespace, service: Service, baseline_url: str, url: str, report: Report
) -> None:
    body = job_body(url)
    total = args.submit_clients * args.submit_requests
    await _fill_slots(service, body, args.max_concurrent_jobs)
    log(f"figure 1: {args.submit_clients} clients x {args.submit_requests} POSTs to vpa ...")
    cpu0, t0 = cpu_snapshot(), time.perf_counter()
    vpa = await submit_load(service.base_url, body, total, args.submit_clients, warmup_per_worker=2)
    wall = time.perf_counter() - t0
    report.notes.append(cpu_note(f"figure 1 on vpa ({wall:.1f} s wall, 2 cores)", cpu0))
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
    bare = await _submit_bare(args, baseline_url, body, total, report)
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


async def _fill_slots(service: Service, body: dict[str, Any], slots: int) -> None:
    """Start a job in every slot and wait until their stage workers have started and the
    machine is idle again, so that the timed submissions do not share the cores with Ray
    starting worker processes (about a CPU-second each): the figure is the control
    plane's. (vpa keeps those workers between jobs: config/ray_env.py `worker_env`.)"""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=60.0) as client:
        ids = [(await client.post("/api/v1/jobs/", json=body)).json()["id"] for _ in range(slots)]
        for _ in range(300):
            statuses = [(await client.get(f"/api/v1/jobs/{i}")).json()["status"] for i in ids]
            if "queued" not in statuses:
                break
            await asyncio.sleep(0.1)
    busy = await asyncio.to_thread(wait_until_idle, 20.0)
    log(f"  {slots} slots filled; the machine settled at {busy:.2f} cores busy")


async def _submit_bare(
    args: argparse.Namespace, baseline_url: str, body: dict[str, Any], total: int, report: Report
) -> SubmitRun:
    """Figure 1 on the bare app, then its insert time alone: the floor of figure 2."""
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
    return bare


# ============================================================================ figure 2: jobs


@dataclasses.dataclass
class Throughput:
    rate: float  # completed jobs / (last completion - first start)
    rate_submit: float  # completed jobs / (last completion - first submit)
    overhead_s: list[float]  # the coordinator's dispatch overhead per job
    complete: bool


async def figure_throughput(
    args: argparse.Namespace, service: Service, clip_url: str, tmp: Path, report: Report
) -> None:
    vpa = await _throughput_vpa(args, service, job_body(clip_url), report)

    log(f"figure 2: the same {args.jobs} jobs in a process pool of {args.max_concurrent_jobs} ...")
    cpu0 = cpu_snapshot()
    pool = await asyncio.to_thread(
        run_pool_baseline, clip_url, tmp / "pool", args.jobs, args.max_concurrent_jobs
    )
    report.notes.append(cpu_note(f"figure 2 on the pool ({pool['wall_s']:.0f} s of jobs)", cpu0))
    log(f"  pool: {pool['rate']:.2f} jobs/s over {pool['wall_s']:.1f} s")
    report.notes.append(
        f"figure 2, bare pool time per job (fetch+audio): p50 {ms(percentile(pool['job_s'], 50))}"
        f", p99 {ms(percentile(pool['job_s'], 99))}"
    )
    done_txt = "" if vpa.complete else " (incomplete)"
    for since, rate in (("start", vpa.rate), ("submit", vpa.rate_submit)):
        report.add(
            f"2. jobs/s, {args.jobs} queued, first {since} → last completion",
            f"{rate:.2f}/s{done_txt}",
            f"{pool['rate']:.2f}/s",
            ratio(rate, pool["rate"]),
        )
    samples, insert_s = vpa.overhead_s, report.insert_s
    for q in (50, 99):
        a, b = percentile(samples, q), percentile(insert_s, q)
        report.add(
            f"2. coordinator overhead per job p{q} ({len(samples)} jobs)",
            ms(a),
            f"{ms(b)} (1 insert)",
            ratio(a, b),
        )


async def _throughput_vpa(
    args: argparse.Namespace, service: Service, body: dict[str, Any], report: Report
) -> Throughput:
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
    stalled = False
    try:
        counts = await service.wait_terminal(
            sub.ids, timeout_s=args.timeout, stall_s=120, label="figure 2"
        )
    except Stalled as exc:
        stalled, counts = True, exc.counts
        report.problems.append(f"figure 2: {exc}\n{await service.diagnostics()}")
    wall = time.time() - t_submit
    report.notes.append(cpu_note(f"figure 2 on vpa ({wall:.0f} s wall, 2 cores)", cpu0))
    samples = (await asyncio.to_thread(service.overhead_samples))[n_before:]
    jobs = await asyncio.to_thread(service.jobs, sub.ids)
    completed = [j for j in jobs if _status(j) == "completed"]
    failed = [j for j in jobs if _status(j) == "failed"]
    if failed:
        errs = sorted({f"{j.error_code}: {j.error_message}" for j in failed})
        report.problems.append(f"figure 2: {len(failed)} jobs failed: {errs[:5]}")
    starts = [epoch(j.started_at) for j in jobs if j.started_at is not None]
    ends = [epoch(j.completed_at) for j in completed if j.completed_at is not None]
    rate = rate_submit = math.nan
    if completed and starts and ends:
        rate = len(completed) / (max(ends) - min(starts))
        rate_submit = len(completed) / (max(ends) - t_submit)
        log(
            f"  vpa: {len(completed)} completed, {rate:.2f} jobs/s (first start -> last "
            f"completion), {rate_submit:.2f} jobs/s from first submit; counts {counts}"
        )
    _stage_time_note(completed, report)
    complete = not stalled and len(completed) == args.jobs
    return Throughput(rate, rate_submit, samples, complete)


def _status(job: Any) -> str:
    return str(getattr(job.status, "value", job.status))


def _stage_time_note(completed: list[Any], report: Report) -> None:
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
