"""The markdown report of bench/full_job.py: per stage alone vs in the service, the
orchestration overhead, each run, and where the service job's time went."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine_text, tree_text
from bench.pipeline_alone import AloneRun
from bench.pipeline_service import ServiceRun, breakdown, first_progress_latency
from bench.stats import fmt_pct, fmt_s, median

TARGET_OVERHEAD = 0.10


@dataclasses.dataclass
class Setup:
    """What was measured, for the report's header."""

    video: Path
    video_s: float
    video_info: str
    job_type: str
    chain: tuple[str, ...]
    options: dict[str, Any]
    num_cpus: int


def stage_timings(run: ServiceRun) -> dict[str, float]:
    return {k: float(v) for k, v in (run.job.get("stage_timings") or {}).items()}


def report(
    setup: Setup, alones: list[AloneRun], services: list[ServiceRun], notes: list[str]
) -> str:
    done = [run for run in services if run.wall_s is not None]
    n_a, n_s = len(alones), len(done)
    of = "" if max(n_a, n_s) <= 1 else f", median of {n_a} / {n_s} runs"
    lines = [
        "# Pipeline figures (bench/full_job.py)",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"`{' '.join(['bench/full_job.py', *sys.argv[1:]])}` on {tree_text()}",
        "",
        f"- machine: {machine_text()}; load average at the start {notes_load(notes)}",
        f"- video: {setup.video.name}, {setup.video_info}",
        f"- job: {setup.job_type} ({' → '.join(setup.chain)}), options "
        f"{json.dumps(setup.options)} (other options at their defaults)",
        "",
        f"| stage | alone, s{of} | in the service (stage_timings), s | service - alone, s |",
        "|---|---|---|---|",
    ]
    lines += stage_table(setup, alones, done)
    lines += run_lines(alones, services)
    # The details of the run whose service wall time is the median one.
    pick = sorted(done, key=lambda r: r.wall_s or 0.0)[(len(done) - 1) // 2] if done else None
    index = services.index(pick) if pick else (len(services) - 1)
    shown = services[index] if services else None
    shown_alone = alones[min(index, len(alones) - 1)] if alones else None
    label = f" (run {index + 1})" if len(services) > 1 else ""
    if shown and shown.job:
        lines += where_time_went(setup.chain, shown, shown_alone, label)
    lines += ["", "Other figures:"]
    lines += other_figures(setup, shown, shown_alone, label)
    lines += [f"- {n}" for n in notes if not n.startswith("load:")]
    problems = [p for run in services for p in run.problems]
    lines += ["", "Problems seen:" if problems else "Problems seen: none."]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines).rstrip() + "\n"


def stage_table(setup: Setup, alones: list[AloneRun], done: list[ServiceRun]) -> list[str]:
    """The table's rows (medians over the runs), then the overhead against the target."""
    chain, video_s = setup.chain, setup.video_s
    lines = []
    for stage in chain:
        a = median([run.timings[stage] for run in alones if stage in run.timings])
        s = median([t[stage] for run in done if stage in (t := stage_timings(run))])
        diff = s - a if a is not None and s is not None else None
        lines.append(f"| {stage} | {fmt_s(a)} | {fmt_s(s)} | {fmt_s(diff)} |")
    alone_sums = [sum(run.timings.values()) for run in alones if len(run.timings) == len(chain)]
    service_sums = [sum(stage_timings(run).values()) for run in done]
    sum_alone, sum_service = median(alone_sums), median(service_sums)
    diff = sum_service - sum_alone if sum_alone is not None and sum_service is not None else None
    lines.append(
        f"| **sum of the stages** | **{fmt_s(sum_alone)}** | **{fmt_s(sum_service)}** | "
        f"{fmt_s(diff)} |"
    )
    wall = median([run.wall_s for run in done if run.wall_s is not None])
    lines.append(f"| **service job wall time** (POST → seen completed) | | **{fmt_s(wall)}** | |")
    lines.append("")

    def xrt(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds / video_s:.3f}x real time"

    overhead = wall / sum_alone - 1 if wall is not None and sum_alone else None
    verdict = ""
    if overhead is not None:
        verdict = (
            " (within the 10% target)" if overhead <= TARGET_OVERHEAD else " (over the 10% target)"
        )
    lines += [
        f"- video duration: {video_s:.1f} s",
        f"- service job wall time: {fmt_s(wall)} s = **{xrt(wall)}**; stages alone summed: "
        f"{fmt_s(sum_alone)} s = {xrt(sum_alone)}",
        f"- **orchestration overhead** (service wall / sum of stages alone - 1): "
        f"**{fmt_pct(overhead)}**{verdict}",
    ]
    if alone_sums and done and (len(alone_sums) > 1 or len(done) > 1):
        best = min(r.wall_s for r in done if r.wall_s is not None) / min(alone_sums) - 1
        lines.append(f"- best service wall / best sum of stages alone - 1: {fmt_pct(best)}")
    return lines


def run_lines(alones: list[AloneRun], services: list[ServiceRun]) -> list[str]:
    """One line a run: both sides' totals and what others used of the CPU meanwhile."""
    lines = []
    for i in range(max(len(alones), len(services))):
        a_run = alones[i] if i < len(alones) else None
        s_run = services[i] if i < len(services) else None
        parts = [f"- run {i + 1}:"]
        if a_run:
            parts.append(
                f"alone {sum(a_run.timings.values()):.2f} s (others used "
                f"{a_run.cpu.outside_s:.1f} CPU s meanwhile);"
            )
        if s_run and s_run.wall_s is not None:
            outside = s_run.cpu.outside_s if s_run.cpu else math.nan
            parts.append(
                f"service {s_run.wall_s:.2f} s, its stages {sum(stage_timings(s_run).values()):.2f}"
                f" s (others used {outside:.1f} CPU s meanwhile)"
            )
            if a_run:
                parts.append(
                    f"; overhead {fmt_pct(s_run.wall_s / sum(a_run.timings.values()) - 1)}"
                )
        elif s_run:
            parts.append("service: no result")
        lines.append(" ".join(parts).replace(" ;", ";"))
    return lines


def where_time_went(
    chain: tuple[str, ...], shown: ServiceRun, shown_alone: AloneRun | None, label: str
) -> list[str]:
    lines = []
    parts_s = breakdown(shown, chain)
    if parts_s:
        lines.append(f"- where the service job's time went{label} (event log, server clock):")
        lines += [f"  - {name}: {seconds:.2f} s" for name, seconds in parts_s.items()]
    latency = first_progress_latency(shown, chain)
    if latency:
        alone_first = shown_alone.first_progress if shown_alone else {}
        lines.append(
            "- stage started → its first progress report (in the service: the Ray task's "
            "start-up, then the stage's first report; alone in brackets): "
            + ", ".join(
                f"{k} {v:.2f} s ({fmt_s(alone_first.get(k))} s)" for k, v in latency.items()
            )
        )
    return lines


def other_figures(
    setup: Setup, shown: ServiceRun | None, shown_alone: AloneRun | None, label: str
) -> list[str]:
    lines = []
    if shown_alone:
        lines.append(f"- stages alone: {shown_alone.load_note}")
        lines.append(f"- CPU during the stages alone{label}: {shown_alone.cpu.text()}")
        lines += result_notes("stages alone", shown_alone.results)
    if shown:
        lines.append(
            f"- service: Ray num_cpus={setup.num_cpus}, deployments "
            f"{', '.join(shown.deployments)}; Ray + Serve + vpa start to first /health "
            f"200: {shown.deploy_s:.1f} s (not timed)"
        )
        if shown.cpu:
            lines.append(f"- CPU during the service job{label}: {shown.cpu.text()}")
        if shown.job:
            lines += result_notes("service", shown.job)
        if shown.events:
            kinds: dict[str, int] = {}
            for event in shown.events:
                kinds[event["type"]] = kinds.get(event["type"], 0) + 1
            lines.append(
                f"- service job events written: {len(shown.events)} "
                f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
            )
    return lines


def notes_load(notes: list[str]) -> str:
    return next((n.split(":", 1)[1].strip() for n in notes if n.startswith("load:")), "n/a")


def result_notes(label: str, fields: dict[str, Any]) -> list[str]:
    transcript = fields.get("transcript") or ""
    clips = fields.get("generated_clips") or []
    analysis = fields.get("analysis_results") or {}
    return [
        f"- {label} results: transcript {len(transcript.split())} words in "
        f"{len(fields.get('segments') or [])} segments; analysis keys "
        f"{sorted(analysis)[:8]}; {len(clips)} clips"
    ]
