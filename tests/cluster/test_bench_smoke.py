"""Every benchmark script still runs: `python bench/<script>.py --smoke` from the repository
root, as README.md says to run them, exits 0 and prints its table(s).

A smoke run uses the smallest inputs (seconds per figure), so its figures mean nothing; what
it guards is that a benchmark keeps starting. The scripts run in two lanes at once, one
script after another in each; at most two Ray instances (each script starts its own, or a
simulated cluster) run at the same time, as they spend most of their time waiting for
processes to start. README-figures.md is left as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "bench" / "README-figures.md"

# Two lanes of about the same length (cluster alone takes as long as the other two Ray ones).
LANES = (("cluster", "transcribe", "analyze", "clips"), ("control_plane", "full_job", "diarize"))
# bench/media.py and bench/baseline.py are children the benchmarks start, not benchmarks.
CHILDREN = ("media", "baseline")

# Per script: lines its stdout must hold (a table's header, then the start of its rows).
EXPECTED: dict[str, tuple[str, ...]] = {
    "control_plane": (
        "| figure | vpa (Ray Serve) | bare FastAPI + uvicorn | ratio vpa ÷ bare |",
        "| 1. submit latency p50 (2 clients) | ",
        "| 2. jobs/s, 4 queued, first start → last completion | ",
        "| 2. coordinator overhead per job p50 (4 jobs) | ",
        "| 3. WebSocket update latency p50 (4 clients) | ",
        "Problems seen: none.",
    ),
    "full_job": (
        "| stage | alone, s | in the service (stage_timings), s | service - alone, s |",
        "| fetch | ",
        "| transcribe | ",
        "| subtitles | ",
        "| **service job wall time** (POST → seen completed) | | **",
        "Problems seen: none.",
    ),
    "cluster": (
        "| figure | local store | S3 store (SeaweedFS) | S3 ÷ local |",
        "| seconds per job | ",
        "| nodes the stages ran on | 3 | 3 | |",
        "| stage | in | out | seconds |",
        "| subtitles | ",
    ),
    "transcribe": (
        "| setting | load s | transcribe s | real-time factor | WER | peak RSS MB |",
        "| int8, beam 1 | ",
        "| what | seconds | peak RSS MB | above process start MB |",
        "| decode 0.01 h with iter_audio_windows",
        "| mode | wall s | audio s per s | vs sequential | worst WER | peak RSS MB |",
        "| 4 threads, one model, num_workers=4 | ",
        "| passage | voice | audio s | fast WER (beam 1) | accurate WER (beam 5, default) |",
        "| kitchen | en-us | ",
        "| **median WER** | | | **",
    ),
    "analyze": (
        "| words | segments | median s | best s | runs | chapters | topics | sentiment |",
        "| 2",  # about 200 words
        "| transcript | words | passages | chapters found | passages in summary ",
        "| software 14 + cooking 10 + football 12 | ",
    ),
    "diarize": (
        "| conversation | audio s | turns | speakers (true / found) | DER | missed | ",
        "| one voice (A) | ",
        "| two voices | ",
        "| three voices | ",
        "| conversation | vad+words: DER, speakers | vad: DER, speakers | words: DER, speakers |",
    ),
    "clips": (
        "| method | wall (s) | wall vs smart | CPU (s) | CPU vs smart |",
        "| smart (cut_clip auto) | ",
        "| reencode (libx264 veryfast) | ",
        "| stream copy (-c copy) | ",
    ),
}


# A script still running after TIMEOUT_S, or when its lane has run LANE_TIMEOUT_S, is
# stopped with all it started (so the test's own 600 s limit never leaves one running).
TIMEOUT_S = 300
LANE_TIMEOUT_S = 540


@dataclass
class Run:
    script: str
    returncode: int | None  # None: stopped, out of time
    stdout: str
    stderr: str
    seconds: float


def run_smoke(script: str, timeout_s: float) -> Run:
    """`python bench/<script>.py --smoke` from the repository root, in a process group of
    its own, so that a timeout stops what it started too (Ray, media server, S3 server)."""
    if timeout_s <= 0:
        return Run(script, None, "", "not started: its lane had run out of time", 0.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, f"bench/{script}.py", "--smoke"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        returncode = None
    return Run(script, returncode, stdout, stderr, time.perf_counter() - started)


def run_lane(scripts: tuple[str, ...]) -> list[Run]:
    deadline = time.monotonic() + LANE_TIMEOUT_S
    return [run_smoke(s, min(TIMEOUT_S, deadline - time.monotonic())) for s in scripts]


@dataclass
class Runs:
    by_script: dict[str, Run]
    figures_before: bytes
    figures_after: bytes


@pytest.fixture(scope="module")
def runs() -> Runs:
    figures_before = FIGURES.read_bytes()
    with ThreadPoolExecutor(max_workers=2) as pool:
        lanes = [pool.submit(run_lane, lane) for lane in LANES]
        by_script = {run.script: run for lane in lanes for run in lane.result()}
    for run in by_script.values():
        print(f"\nbench/{run.script}.py --smoke: exit {run.returncode} in {run.seconds:.1f} s")
    return Runs(by_script, figures_before, FIGURES.read_bytes())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("script", [script for lane in LANES for script in lane])
def test_smoke_run_prints_its_table(runs: Runs, script: str) -> None:
    run = runs.by_script[script]
    outcome = "stopped: out of time" if run.returncode is None else f"exit {run.returncode}"
    assert run.returncode == 0, f"{outcome}; stderr ends:\n{run.stderr[-3000:]}"
    lines = run.stdout.splitlines()
    for expected in EXPECTED[script]:
        assert any(line.startswith(expected) for line in lines), (
            f"no line starting {expected!r} in the output of bench/{script}.py --smoke:\n"
            f"{run.stdout[-3000:]}"
        )


@pytest.mark.timeout(600)
def test_smoke_runs_leave_the_figures_alone(runs: Runs) -> None:
    assert runs.figures_after == runs.figures_before


def test_every_benchmark_script_is_smoke_tested() -> None:
    scripts = {
        path.stem
        for path in (ROOT / "bench").glob("*.py")
        if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    }
    assert scripts - set(CHILDREN) == set(EXPECTED) == {script for lane in LANES for script in lane}
