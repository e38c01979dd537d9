"""Figure 4 of the control-plane benchmark: vpa with a long queue.

`--queued-jobs` (10,000) jobs are queued (priority 0, pointing at the media server's
`/hang/` clip, so the few that start hold their slots and the rest stay queued); then
- `GET /api/v1/jobs/queue/status` and `GET /api/v1/jobs/?status_filter=queued&limit=20`
  are timed, one request at a time (p50/p99; the issue's goal: p99 ≤ 100 ms);
- `--scale-probe-jobs` jobs of the 1-s clip at priority 10 jump that queue, and the
  coordinator's dispatch overhead for them is read, beside figure 2's (a short queue).
The queue is cleared afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.clients import submit_load
from bench.common import log
from bench.control_figures import Report, job_body
from bench.service import Service, Stalled
from bench.stats import ms, percentile


async def _timed_gets(base_url: str, path: str, params: dict[str, Any], n: int) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = await client.get(path, params=params)
            r.raise_for_status()
            if i >= 3:  # three warm-up requests
                out.append(time.perf_counter() - t0)
    return out


async def figure_queue_scale(
    args: argparse.Namespace, service: Service, hang_url: str, clip_url: str, report: Report
) -> None:
    n = args.queued_jobs
    log(f"figure 4: queueing {n} jobs ...")
    filler = {**job_body(hang_url), "priority": 0}
    sub = await submit_load(service.base_url, filler, n, args.submit_clients)
    log(f"  queued {len(sub.ids)} at {sub.rate:.0f}/s ({len(sub.errors)} errors)")
    if sub.errors:
        report.problems.append(f"figure 4: {len(sub.errors)} submissions failed: {sub.errors[:3]}")
    for name, path, params in (
        ("queue status", "/api/v1/jobs/queue/status", {}),
        ("list (queued, 20)", "/api/v1/jobs/", {"status_filter": "queued", "limit": 20}),
    ):
        lat = await _timed_gets(service.base_url, path, params, args.scale_requests)
        for q in (50, 99):
            report.add(f"4. {name} p{q} ({n} queued)", ms(percentile(lat, q)), "≤ 100 ms", "")

    before = len(await asyncio.to_thread(service.overhead_samples))
    probe = {**job_body(clip_url), "priority": 10}
    probes = await submit_load(service.base_url, probe, args.scale_probe_jobs, 1)
    try:
        await service.wait_terminal(probes.ids, timeout_s=300, stall_s=120, label="figure 4")
    except Stalled as exc:
        report.problems.append(f"figure 4 probes: {exc}")
    samples = (await asyncio.to_thread(service.overhead_samples))[before:]
    if samples:
        for q in (50, 99):
            report.add(
                f"4. coordinator overhead per job p{q} ({n} queued, {len(samples)} jobs)",
                ms(percentile(samples, q)),
                "figure 2's (short queue)",
                "",
            )
    async with httpx.AsyncClient(base_url=service.base_url, timeout=120.0) as client:
        r = await client.delete("/api/v1/jobs/queue/clear")
        log(f"  queue clear -> {r.status_code} {r.text[:120]}")
