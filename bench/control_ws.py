"""Figure 3 of the control-plane benchmark: live-update latency on `/ws/jobs/broadcast`,
vpa against the bare app replaying vpa's event times (bench/control_figures.py has the
others and the `Report`)."""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from bench.baseline import run_pool_baseline
from bench.clients import WsClients, WsResult, replay_posts, submit_load
from bench.common import epoch, log
from bench.control_figures import Report, cpu_note, cpu_snapshot, job_body
from bench.service import Service, Stalled
from bench.stats import ms, percentile, ratio


async def figure_ws(
    args: argparse.Namespace,
    service: Service,
    baseline_url: str,
    clip_url: str,
    tmp: Path,
    report: Report,
) -> None:
    """`args.ws_rounds` rounds, each vpa's batch then the bare app's replay of it; the
    percentiles are over every round's deliveries (one round's p99 is a handful of events,
    and it swings with what else the 2 cores did in those seconds)."""
    body = job_body(clip_url)
    n = args.ws_clients
    # Warmed as the pool is (one job per worker): the workers of the job slots started.
    warm = await submit_load(service.base_url, body, args.max_concurrent_jobs, 1)
    await service.wait_terminal(warm.ids, timeout_s=120, stall_s=60, label="figure 3 warm-up")
    vpa_rounds: list[WsResult] = []
    bare_rounds: list[WsResult] = []
    for round_no in range(1, args.ws_rounds + 1):
        log(f"figure 3, round {round_no} of {args.ws_rounds}")
        vpa, offsets, jobs = await _ws_vpa(args, service, body, report, first=round_no == 1)
        vpa_rounds.append(vpa)
        bare_rounds.append(await _ws_bare(args, baseline_url, clip_url, body, offsets, tmp, jobs))
    vpa, bare = merge_ws(vpa_rounds), merge_ws(bare_rounds)
    check_ws("vpa", vpa, report)
    check_ws("bare", bare, report)
    for q in (50, 99):
        a, b = percentile(vpa.latencies, q), percentile(bare.latencies, q)
        report.add(f"3. WebSocket update latency p{q} ({n} clients)", ms(a), ms(b), ratio(a, b))
    if len(vpa_rounds) > 1:
        report.notes.append(
            "figure 3 by round, p50 / p99 vpa vs bare: "
            + "; ".join(
                f"{ms(percentile(v.latencies, 50))} / {ms(percentile(v.latencies, 99))} vs "
                f"{ms(percentile(b.latencies, 50))} / {ms(percentile(b.latencies, 99))}"
                for v, b in zip(vpa_rounds, bare_rounds, strict=True)
            )
        )


async def _ws_vpa(
    args: argparse.Namespace,
    service: Service,
    body: dict[str, Any],
    report: Report,
    first: bool,
) -> tuple[WsResult, list[float], int]:
    """One round on vpa: the result, its events' offsets from the first, the jobs' count."""
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
    wall = time.perf_counter() - t0
    if first:
        report.notes.append(cpu_note(f"figure 3 on vpa ({wall:.1f} s wall, 2 cores)", cpu0))
    await clients.close()
    vpa = clients.result(expected)
    log(
        f"  vpa: {vpa.received}/{vpa.expected} deliveries, {len(events)} events; "
        f"p50 {ms(percentile(vpa.latencies, 50))} p99 {ms(percentile(vpa.latencies, 99))}"
    )
    # The bare app gets one write (and one broadcast) at each of these event times.
    stamps = sorted(epoch(ev.created_at) for ev in events if ev.created_at is not None)
    offsets = [t - stamps[0] for t in stamps] if stamps else []
    if first:
        span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        report.notes.append(
            f"figure 3 load (a round): {len(events)} events of {len(sub.ids)} jobs over "
            f"{span:.1f} s, {vpa.received} vpa deliveries (of {vpa.expected} expected)"
        )
    return vpa, offsets, len(sub.ids)


def merge_ws(rounds: list[WsResult]) -> WsResult:
    """Several rounds' results as one: every delivery, every count."""
    return WsResult(
        latencies=[x for r in rounds for x in r.latencies],
        received=sum(r.received for r in rounds),
        expected=sum(r.expected for r in rounds),
        duplicates=sum(r.duplicates for r in rounds),
        out_of_order=sum(r.out_of_order for r in rounds),
        closed_early=[x for r in rounds for x in r.closed_early],
        missing=[x for r in rounds for x in r.missing],
    )


async def _ws_bare(
    args: argparse.Namespace,
    baseline_url: str,
    clip_url: str,
    body: dict[str, Any],
    offsets: list[float],
    tmp: Path,
    jobs: int,
) -> WsResult:
    """Figure 3 on the bare app: vpa's write times replayed, the same media work beside."""
    n = args.ws_clients
    log(f"figure 3: {n} clients on the bare app; replaying {len(offsets)} writes ...")
    bare_clients = WsClients(f"{baseline_url.replace('http://', 'ws://')}/ws/jobs/broadcast", n)
    await bare_clients.connect()
    await asyncio.sleep(1.0)
    # The same media work beside it: the batch's jobs in the process pool of figure 2.
    warm = threading.Event()
    pool = asyncio.create_task(
        asyncio.to_thread(
            run_pool_baseline, clip_url, tmp / "pool-ws", jobs, args.max_concurrent_jobs, warm
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
    return bare


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
