"""One job through the service, for bench/full_job.py: Ray + Serve + vpa with its model
deployments, one job POSTed and polled until done, and where its wall time went according
to its own event log."""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

import httpx

from bench.common import log, parse_ts
from bench.cpu import CpuSnapshot, CpuUse
from bench.service import POLL_S, Service, poll_job, post_job, warm_up


@dataclasses.dataclass
class ServiceRun:
    wall_s: float | None = None
    job: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    posted_at: float = 0.0  # epoch seconds just before the POST
    seen_at: float = 0.0  # epoch seconds of the poll that saw the job terminal
    deploy_s: float = 0.0
    deployments: list[str] = dataclasses.field(default_factory=list)
    cpu: CpuUse | None = None
    problems: list[str] = dataclasses.field(default_factory=list)


def run_service(
    url: str,
    body: dict[str, Any],
    settings: Any,
    num_cpus: int,
    timeout_s: float,
    warm_url: str | None = None,
) -> ServiceRun:
    """Ray + Serve + vpa with models; one job, timed from POST to completed. Always shuts
    Serve and Ray down before returning."""
    out = ServiceRun()
    service: Service | None = None
    t_deploy = time.perf_counter()
    try:
        log(f"service: starting Ray (num_cpus={num_cpus}), Serve and vpa with models ...")
        service = Service(settings, num_cpus, with_models=True)
        out.deployments = service.deployments
        service.wait_healthy(120)
        out.deploy_s = time.perf_counter() - t_deploy
        log(f"  healthy after {out.deploy_s:.1f} s ({', '.join(out.deployments)})")
        with httpx.Client(base_url=service.base_url, timeout=60.0) as client:
            if warm_url is not None:
                log(f"  warm-up job done in {warm_up(client, warm_url)[0]:.1f} s")
            time.sleep(2.0)  # let start-up work (replica health checks, prestarted workers) settle
            measure_job(client, body, timeout_s, out)
    except Exception as exc:
        out.problems.append(f"service run aborted: {type(exc).__name__}: {exc}")
        log(out.problems[-1])
    finally:
        log("service: shutting Serve and Ray down")
        if service is not None:
            service.shutdown()
    return out


def measure_job(
    client: httpx.Client, body: dict[str, Any], timeout_s: float, out: ServiceRun
) -> None:
    """POST the job, poll it until terminal: its wall time, CPU use, fields and events."""
    cpu0 = CpuSnapshot.take()
    t0 = time.perf_counter()
    out.posted_at = time.time()
    job_id = post_job(client, body)
    log(f"  job {job_id} submitted; polling every {POLL_S} s ...")
    last_stage: list[Any] = [None]

    def on_poll(job: dict[str, Any]) -> None:
        if job.get("current_stage") != last_stage[0]:
            last_stage[0] = job.get("current_stage")
            log(f"  {last_stage[0]} ... ({job.get('progress', 0):.0f}%)")

    job = poll_job(client, job_id, timeout_s, on_poll)
    wall = time.perf_counter() - t0
    out.seen_at = time.time()
    out.cpu = CpuUse.between(cpu0, CpuSnapshot.take(), wall)
    out.job = job
    out.events = list(client.get(f"/api/v1/jobs/{job_id}/events").json())
    if job.get("status") == "completed":
        out.wall_s = wall
        log(f"  completed in {wall:.2f} s")
    else:
        out.problems.append(
            f"the service job ended {job.get('status', 'unknown')!r} after {wall:.1f} s: "
            f"{job.get('error_code')}: {job.get('error_message')}"
        )
        log(out.problems[-1])


def breakdown(run: ServiceRun, chain: tuple[str, ...]) -> dict[str, float]:
    """Where the service job's wall time went, from its event log (server clock)."""
    job = run.job
    parts: dict[str, float] = {}
    if not job.get("started_at") or not job.get("completed_at"):
        return parts
    started = [e for e in run.events if e["type"] == "stage_started"]
    completed = [e for e in run.events if e["type"] == "stage_completed"]
    done_event = next((e for e in run.events if e["type"] == "completed"), None)
    if not started or not completed or done_event is None:
        return parts
    first = parse_ts(started[0]["created_at"])
    parts["POST → first stage started (HTTP, coordinator, dispatch)"] = first - run.posted_at
    stage_sum = sum(float(v) for v in job.get("stage_timings", {}).values())
    ends = {e["stage"]: parse_ts(e["created_at"]) for e in completed}
    starts = {e["stage"]: parse_ts(e["created_at"]) for e in started}
    gaps = sum(
        starts[b] - ends[a] for a, b in itertools.pairwise(chain) if a in ends and b in starts
    )
    in_stage = sum(ends[s] - starts[s] for s in chain if s in ends and s in starts)
    parts["stage started → completed events, summed"] = in_stage
    parts["  of which stage_timings (Ray task submit → result)"] = stage_sum
    parts["  of which around the tasks (event writes, artifact registration)"] = (
        in_stage - stage_sum
    )
    parts["gaps between one stage's completed and the next one's started"] = gaps
    last = parse_ts(done_event["created_at"])
    parts["last stage completed → job completed"] = last - max(ends.values())
    parts["job completed → seen by the client's poll"] = run.seen_at - last
    return parts


def first_progress_latency(run: ServiceRun, chain: tuple[str, ...]) -> dict[str, float]:
    """Per stage: seconds from its stage_started event to its first progress event."""
    starts: dict[str, float] = {}
    first: dict[str, float] = {}
    for event in run.events:
        stage = event.get("stage")
        if stage is None:
            continue
        if event["type"] == "stage_started":
            starts.setdefault(stage, parse_ts(event["created_at"]))
        elif event["type"] == "progress":
            first.setdefault(stage, parse_ts(event["created_at"]))
    return {s: first[s] - starts[s] for s in chain if s in starts and s in first}
