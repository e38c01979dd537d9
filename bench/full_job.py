"""Pipeline benchmark: one full_processing job through vpa beside its stages run alone.

Run: `PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/full_job.py [--minutes 10]
[--size 1280x720] [--quick] [--runs N] [--smoke]` (`--quick`: a 2-minute video; `--runs N`:
N rounds of both runs, the table giving medians; `--smoke`, to check that the script runs: a
15 s 320x180 video, one 8 s clip, no warm-up job, no waiting for quiet, never written). A
script, never a test. It prints a markdown report; `--write` also puts it in
bench/README-figures.md (replacing this script's earlier section there).

The video: a testsrc2 picture at `--size`, 25 fps, a keyframe every 2 s (`-g 50`), h264
`-preset ultrafast` + AAC, whose sound is the speech clip tests/assets/speech_en.ogg looped
to `--minutes` (so transcription and analysis get real words). It is made once and cached
under tmp/bench-cache/ (gitignored), and served over HTTP by the tests' loopback media
server (tests/fixtures/media.py, in a subprocess), so both runs download it with yt-dlp.

What it measures, with the same job options (`OPTIONS`: 5 clips of 30 s) on both sides:
1. stages alone: each stage of the full_processing chain (fetch, audio, transcribe, analyze,
   clips, subtitles) called in this process with `pipeline.stages.run_stage`, in order,
   each consuming the previous one's checkpoint; the model stages use an in-process
   `ModelServices` that does what the Transcriber and Analyzer deployments do per request,
   with the models loaded once before timing;
2. through the service: Ray (num_cpus = this machine's cores), Serve and the vpa app with
   its model deployments (temp SQLite database and artifact directory); a 20 s
   full_processing warm-up job (skipped with `--cold`: a service that has run a job has
   its stage-task worker processes and replicas warm), then one full_processing job
   submitted over HTTP and polled every 0.2 s until completed; the wall
   time from the POST to the first poll that sees it completed, and the job's
   `stage_timings` (the coordinator's seconds per stage: Ray task submit to result).

The table gives, per stage, alone vs in the service; the sums; the service job's wall time
as a multiple of real time (wall / video duration); and the orchestration overhead =
service wall / sum of the stages alone - 1 (target: at most 10%). Under it: where the
service's extra time went (queueing, gaps between stages, inside the stage tasks) and the
CPU seconds used on the machine during each run, this benchmark's and everyone else's.

This machine is shared: before each run the script waits (up to `--wait-quiet` seconds)
until no other Ray instance is running and other work keeps less than `--busy-limit` cores
busy; the report gives the CPU seconds others used during each run all the same.

The parts: bench/pipeline_alone.py (1), bench/pipeline_service.py (2), bench/pipeline_report.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/full_job.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (
    FIGURES_FILE,
    attempt,
    load_text,
    log,
    reraise_interrupt,
    temp_dir,
    write_section,
)
from bench.cpu import wait_for_quiet
from bench.media import FPS, GOP, make_video, media_server
from bench.pipeline_alone import AloneRun, run_alone
from bench.pipeline_report import Setup, report
from bench.pipeline_service import ServiceRun, run_service
from bench.service import WARM_UP_MINUTES, service_settings

JOB_TYPE = "full_processing"
OPTIONS: dict[str, Any] = {"clip_duration": 30, "max_clips": 5, "min_confidence": 0.0}
SMOKE_OPTIONS: dict[str, Any] = {"clip_duration": 8, "max_clips": 1, "min_confidence": 0.0}
NAMESPACE = "vpa-bench-pipeline"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=10.0, help="video length (default 10)")
    p.add_argument("--size", default="1280x720", help="picture size WxH (default 1280x720)")
    p.add_argument("--quick", action="store_true", help="smoke run: a 2-minute video")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="Ray CPUs")
    p.add_argument("--timeout", type=float, default=3600.0, help="service job limit, seconds")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=600.0,
        help="seconds to wait, before each run, for other Ray instances to end and the "
        "machine to go quiet (default 600; 0: neither wait nor look)",
    )
    p.add_argument(
        "--busy-limit",
        type=float,
        default=0.3,
        help="cores other work may keep busy for the machine to count as quiet (default 0.3)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat alone + service this many times; the table gives medians (default 1)",
    )
    p.add_argument(
        "--cold", action="store_true", help="no warm-up job before the measured service job"
    )
    p.add_argument("--skip-alone", action="store_true", help="only the service run")
    p.add_argument("--skip-service", action="store_true", help="only the stages alone")
    p.add_argument("--write", action="store_true", help="put the report in README-figures.md")
    p.add_argument("--keep-tmp", action="store_true", help="keep the work directories")
    p.add_argument("--smoke", action="store_true", help="15 s 320x180 video, one clip, cold")
    args = p.parse_args(argv)
    args.options = OPTIONS
    if args.quick:
        args.minutes = 2.0
    if args.smoke:
        args.minutes, args.size, args.runs, args.cold, args.wait_quiet = 0.25, "320x180", 1, True, 0
        args.options, args.write = SMOKE_OPTIONS, False  # a smoke run's figures mean nothing
    if not re.fullmatch(r"\d+x\d+", args.size):
        p.error("--size must look like 1280x720")
    return args


def setup_for(args: argparse.Namespace, video: Path) -> Setup:
    from pipeline.media.probe import probe
    from pipeline.stages import STAGE_CHAINS

    info = probe(video)
    video_s = float(info.duration_s or args.minutes * 60)
    video_info = (
        f"{video_s:.1f} s, {info.width}x{info.height} {info.video_codec} {info.fps:g} fps "
        f"(keyframe every {GOP // FPS} s) + {info.audio_codec} {info.audio_sample_rate_hz} Hz, "
        f"{video.stat().st_size / 2**20:.0f} MiB"
    )
    chain = STAGE_CHAINS[JOB_TYPE]
    return Setup(video, video_s, video_info, JOB_TYPE, chain, args.options, args.num_cpus)


def run_rounds(
    args: argparse.Namespace,
    video: Path,
    tmp: Path,
    alones: list[AloneRun],
    services: list[ServiceRun],
    notes: list[str],
) -> None:
    """`--runs` rounds of the stages alone, then the service job; each waits for quiet."""
    from storage.schemas import JobCreate

    warm_video = None if args.cold else make_video(WARM_UP_MINUTES, args.size)
    with media_server(video.parent) as base_url:
        url = f"{base_url}/{video.name}"
        body = {"youtube_url": url, "job_type": JOB_TYPE, "options": args.options}
        # The options exactly as the service stores them (validated, defaults filled in).
        options = JobCreate.model_validate(body).options.model_dump(mode="json")
        for i in range(args.runs):
            if args.runs > 1:
                log(f"run {i + 1} of {args.runs}")
            settings = service_settings(tmp / f"service-{i}", NAMESPACE)
            if not args.skip_alone:
                if args.wait_quiet > 0:
                    wait_for_quiet(args.wait_quiet, args.busy_limit, notes)
                if i == 0:
                    notes.append(f"load: {load_text()}")
                alones.append(run_alone(url, JOB_TYPE, options, tmp / f"alone-{i}", settings))
                if not args.keep_tmp:
                    shutil.rmtree(tmp / f"alone-{i}", ignore_errors=True)
            if not args.skip_service:
                if args.wait_quiet > 0:
                    wait_for_quiet(args.wait_quiet, args.busy_limit, notes)
                if not any(n.startswith("load:") for n in notes):
                    notes.append(f"load: {load_text()}")
                warm = None if warm_video is None else f"{base_url}/{warm_video.name}"
                services.append(run_service(url, body, settings, args.num_cpus, args.timeout, warm))
                if not args.keep_tmp:
                    shutil.rmtree(tmp / f"service-{i}", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    video = make_video(args.minutes, args.size)
    setup = setup_for(args, video)
    alones: list[AloneRun] = []
    services: list[ServiceRun] = []
    with temp_dir("vpa-bench-pipeline-", args.keep_tmp) as tmp:
        _, failed = attempt(lambda: run_rounds(args, video, tmp, alones, services, notes), notes)
        notes.append(f"load average at the end: {load_text()}")
        text = report(setup, alones, services, notes)
        print("\n" + text, flush=True)
        if args.write:
            write_section(text, FIGURES_FILE, "full_job.py")
            log(f"wrote {FIGURES_FILE}")
    reraise_interrupt(failed)
    problems = [p for run in services for p in run.problems]
    return 1 if failed is not None or problems else 0


if __name__ == "__main__":
    sys.exit(main())
