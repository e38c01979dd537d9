"""Control-plane benchmark: vpa on Ray Serve beside a bare FastAPI app doing the same write.

Run: `PYTHONPATH=. .venv/bin/python bench/control_plane.py [--quick] [--jobs N] [--smoke]`
(or `make bench`). `--smoke`, to check that the script runs: every figure with a handful of
jobs and clients, the jobs of figure 1 on the clip (not the hanging URL, whose jobs take
10 s to drain), and README-figures.md left alone. A script, never a test. It starts
everything it needs on loopback and stops it at the end:

- a media server (tests/fixtures/media.py, in a subprocess: bench/media.py) serving a
  generated 1-second clip;
- the bare baseline (bench/baseline.py): a FastAPI app on uvicorn (in a subprocess) whose
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

The markdown table is printed and written to bench/README-figures.md, between this script's
markers (the other scripts' sections and the hand-written notes stay).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if not __package__:  # `python bench/control_plane.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (
    FIGURES_FILE,
    attempt,
    child,
    free_port,
    load_text,
    log,
    machine_text,
    reraise_interrupt,
    temp_dir,
    tree_text,
    wait_http,
    write_section,
)
from bench.control_figures import Report, figure_submit, figure_throughput
from bench.control_ws import figure_ws
from bench.media import media_server
from bench.queue_scale import figure_queue_scale
from bench.service import Service, service_settings

NAMESPACE = "vpa-bench"


HOW = """\
How each figure is measured (ratio = vpa ÷ bare; above 1 means vpa takes longer, or for
jobs/s below 1 means vpa completes fewer):
1. Submit latency: {clients} workers, each its own `httpx.AsyncClient` (one keep-alive
   connection), POST `/api/v1/jobs/` with `{{"youtube_url": <1-s clip on the loopback media
   server>, "job_type": "audio_extraction"}}` back to back, {requests} timed requests each
   after 2 untimed warm-up requests; time from send to the 201 response. Before them a job
   goes into each of vpa's slots and the timing waits until the machine is idle again
   (their stage workers started). vpa: HAProxy
   (INGRESS_PROXY; or Serve's proxy actor) → Ingress replica (URL policy check) →
   coordinator actor (`create_job`, publish, queued transition, dispatch) → back. Bare:
   FastAPI on uvicorn, `JobCreate` validation, one `JobRepository.create_job` in
   `asyncio.to_thread`, own SQLite file (WAL). With the default
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
   `/ws/jobs/broadcast`; after MAX_CONCURRENT_JOBS untimed jobs (vpa warmed as the pool
   is), {ws_rounds} rounds of: {ws_jobs} jobs submitted one after another, then the bare
   app's replay of them (below); p50 and p99 over all rounds' deliveries. Each
   `job_update` of those jobs is timed from its `data.updated_at` (the server's clock when
   the event was written) to its receipt. vpa's path: coordinator DB write → ProgressHub actor →
   the replica's long-poll listener → per-socket queues → HAProxy (or Serve's proxy
   actor) → client. Bare: one POST (insert + in-process broadcast to every socket) at each
   of vpa's event times (same count, same offsets), same clients and measurement, while
   the batch's jobs run in the figure-2 process pool beside it (so both sides share the 2
   cores with ffmpeg and yt-dlp; the pool finishes its jobs sooner than vpa, so its load
   is more bunched).
"""


def run_text(args: argparse.Namespace, report: Report) -> list[str]:
    import fastapi
    import ray
    import uvicorn

    ray_cpus = "?" if report.ray_cpus is None else f"{report.ray_cpus:g}"
    deployed = ", ".join(report.deployments) or "?"
    return [
        f"- machine: {machine_text()}; load average at the end {load_text(1)} (other work on "
        "the machine shows in the CPU notes as 'outside this benchmark')",
        f"- versions: ray {ray.__version__}, fastapi {fastapi.__version__}, "
        f"uvicorn {uvicorn.__version__}",
        f"- vpa settings: MAX_CONCURRENT_JOBS={args.max_concurrent_jobs}, SQLite (WAL) in a temp "
        "dir, ALLOW_PRIVATE_URLS=true, other settings at their defaults (LOG_LEVEL=INFO, "
        f"PROGRESS_PERSIST_INTERVAL_S=0.5); INGRESS_PROXY={args.ingress_proxy}; "
        f"{args.ingress_replicas} Ingress replica(s); "
        f"Serve deployments: {deployed}; Ray CPUs={ray_cpus}",
        f"- run: jobs={args.jobs}, submit clients={args.submit_clients} x "
        f"{args.submit_requests} requests, WebSocket clients={args.ws_clients}, "
        f"WebSocket batch={args.ws_jobs} jobs x {args.ws_rounds} rounds, "
        f"submit URL mode={args.submit_url}"
        + (" (--quick)" if args.quick else "")
        + (" (--smoke)" if args.smoke else ""),
    ]


def write_markdown(args: argparse.Namespace, report: Report) -> str:
    lines = [
        "# Control-plane figures (bench/control_plane.py)",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"`{' '.join(['bench/control_plane.py', *sys.argv[1:]])}` on {tree_text()}",
        "",
        *run_text(args, report),
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
            ws_rounds=args.ws_rounds,
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
    p.add_argument("--figures", default="1234", help="which figures to run, e.g. 13")
    p.add_argument("--queued-jobs", type=int, default=10_000, help="queue length, figure 4")
    p.add_argument("--scale-requests", type=int, default=50, help="timed GETs, figure 4")
    p.add_argument("--scale-probe-jobs", type=int, default=10, help="jobs timed, figure 4")
    p.add_argument("--max-concurrent-jobs", type=int, default=3)
    p.add_argument("--submit-clients", type=int, default=16)
    p.add_argument("--submit-requests", type=int, default=40, help="timed POSTs per client")
    p.add_argument("--floor-requests", type=int, default=200, help="sequential bare POSTs")
    p.add_argument("--ws-clients", type=int, default=200)
    p.add_argument("--ws-jobs", type=int, default=20, help="jobs whose updates are timed")
    p.add_argument("--ws-rounds", type=int, default=3, help="figure 3 rounds, pooled")
    p.add_argument("--submit-url", choices=("hang", "clip"), default="hang")
    p.add_argument("--ingress-replicas", type=int, default=1)
    p.add_argument(
        "--ingress-proxy",
        choices=("haproxy", "serve"),
        default="haproxy",
        help="INGRESS_PROXY: HAProxy (the default) or Serve's Python proxy actor",
    )
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
    p.add_argument(
        "--smoke", action="store_true", help="4 jobs, 2-4 clients, no write: does it run?"
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.jobs, args.ws_clients, args.ws_jobs, args.no_write = 4, 4, 2, True
        args.ws_rounds = 1
        args.submit_url = "clip"
        args.submit_clients, args.submit_requests, args.floor_requests = 2, 2, 5
    if args.quick:
        args.jobs = min(args.jobs, 50)
        args.ws_clients = min(args.ws_clients, 50)
        args.submit_requests = min(args.submit_requests, 8)
        args.ws_jobs = min(args.ws_jobs, 8)
        args.ws_rounds = 1
        args.floor_requests = min(args.floor_requests, 50)
        args.queued_jobs = min(args.queued_jobs, 500)
    args.max_retries_default = 3
    return args


async def run(args: argparse.Namespace, tmp: Path, report: Report) -> Service:
    """The media server and the bare app in children, vpa here; the figures asked for."""
    from tests.fixtures.media import make_video

    media_root = tmp / "media"
    media_root.mkdir()
    make_video(media_root / "clip.mp4", duration_s=1.0)
    port = free_port()
    baseline_url = f"http://127.0.0.1:{port}"
    baseline_db = f"sqlite:///{tmp / 'baseline.db'}"
    baseline = ["-m", "bench.baseline", str(port), baseline_db, str(args.max_retries_default)]
    with media_server(media_root) as media_base, child(baseline):
        clip_url = f"{media_base}/clip.mp4"
        submit_url = f"{media_base}/hang/clip.mp4" if args.submit_url == "hang" else clip_url
        await asyncio.to_thread(wait_http, f"{baseline_url}/health")
        log(f"media server {media_base}; baseline {baseline_url}")

        log("starting Ray, Serve and vpa ...")
        t0 = time.perf_counter()
        settings = service_settings(
            tmp / "vpa",
            NAMESPACE,
            max_concurrent_jobs=args.max_concurrent_jobs,
            ingress_proxy=args.ingress_proxy,
        )
        replicas = args.ingress_replicas if args.ingress_replicas != 1 else None
        service = Service(settings, args.num_cpus, replicas, args.with_models)
        report.ray_cpus = service.ray_cpus
        report.deployments = service.deployments
        try:
            await asyncio.to_thread(service.wait_healthy)
            log(f"vpa healthy at {service.base_url} after {time.perf_counter() - t0:.1f} s")
            if "1" in args.figures:
                await figure_submit(args, service, baseline_url, submit_url, report)
            if "2" in args.figures:
                await figure_throughput(args, service, clip_url, tmp, report)
            if "3" in args.figures:
                await figure_ws(args, service, baseline_url, clip_url, tmp, report)
            if "4" in args.figures:
                hang_url = f"{media_base}/hang/clip.mp4"
                await figure_queue_scale(args, service, hang_url, clip_url, report)
        except BaseException:
            with contextlib.suppress(Exception):
                report.problems.append("diagnostics at failure:\n" + await service.diagnostics())
            service.shutdown()
            raise
        return service


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report()
    with temp_dir("vpa-bench-", args.keep_tmp) as tmp:
        service, failed = attempt(lambda: asyncio.run(run(args, tmp, report)), report.problems)
        if service is not None:
            service.shutdown()
        text = write_markdown(args, report)
        print("\n" + text, flush=True)
        if not args.no_write:
            write_section(text, args.out, "control_plane.py")
            log(f"wrote {args.out}")
    reraise_interrupt(failed)
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
