"""The ffmpeg processes behind a job, followed by the pid its stage reports, never by name.

`pipeline.media.ffmpeg.run_ffmpeg` names its child in every progress message ("ffmpeg pid 1234
running", then "... s processed (ffmpeg pid 1234)"), and those messages reach the job's
`status_message` and its event log. A test reads the pid back from there, holds the exact
process with psutil (which also notices a pid taken over by a new process), and can check
that this very process is alive, stop it where it stands (so that its stage cannot end
before the test acts), or see it gone.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import psutil

from pipeline.media.ffmpeg import ffmpeg_exe
from tests.integration.conftest import VpaApp

_PID_RE = re.compile(r"\bffmpeg pid (\d+)\b")


def reported_ffmpeg_pids(app: VpaApp, job_id: str, stage: str) -> list[int]:
    """The ffmpeg pids the job's `stage` has reported so far, oldest first."""
    messages = [
        e["message"] or ""
        for e in app.events(job_id)
        if e["type"] == "progress" and e["stage"] == stage
    ]
    job = app.job(job_id)
    if job["current_stage"] == stage:
        messages.append(job["status_message"] or "")
    pids: list[int] = []
    for message in messages:
        for match in _PID_RE.finditer(message):
            if int(match[1]) not in pids:
                pids.append(int(match[1]))
    return pids


def _is_ffmpeg(proc: psutil.Process) -> bool:
    try:
        return Path(proc.exe()).resolve() == Path(ffmpeg_exe()).resolve()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError):
        return False


def running_ffmpeg(
    app: VpaApp, job_id: str, stage: str, timeout_s: float = 180.0, skip: set[int] | None = None
) -> psutil.Process:
    """The first ffmpeg that `stage` of the job reported and that still runs (pids in `skip`
    left out). Waits until there is one; a run that ended before it was seen is passed over
    for the next one the stage reports."""
    deadline = time.monotonic() + timeout_s
    passed = set(skip or ())
    while time.monotonic() < deadline:
        for pid in reported_ffmpeg_pids(app, job_id, stage):
            if pid in passed:
                continue
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                passed.add(pid)
                continue
            if _is_ffmpeg(proc) and not gone(proc):
                return proc
            passed.add(pid)
        time.sleep(0.1)
    raise AssertionError(f"no running ffmpeg was reported by the {stage} stage of {job_id}")


def stop_running_ffmpeg(
    app: VpaApp, job_id: str, stage: str, timeout_s: float = 180.0
) -> psutil.Process:
    """Stop (SIGSTOP) an ffmpeg that `stage` of the job reported, where it stands: the run
    can neither finish nor fail until it is killed (SIGKILL works on a stopped process)."""
    deadline = time.monotonic() + timeout_s
    skip: set[int] = set()
    while True:
        proc = running_ffmpeg(app, job_id, stage, max(deadline - time.monotonic(), 0.0), skip)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.suspend()
            if not gone(proc):
                return proc
        skip.add(proc.pid)  # it ended first: the next one the stage reports


def gone(proc: psutil.Process) -> bool:
    """The process ended (a zombie waiting for its reaper counts as ended)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(proc: psutil.Process, timeout_s: float = 60.0) -> bool:
    """Whether the process ends within `timeout_s` (a bound for a failing test only)."""
    deadline = time.monotonic() + timeout_s
    while not gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_if_running(proc: psutil.Process) -> None:
    """Clean up after a failed test: kill this exact process if it still runs."""
    if not gone(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def describe(proc: psutil.Process) -> dict[str, Any]:
    """What an assertion message should show about the process."""
    try:
        return {"pid": proc.pid, "status": proc.status(), "cmdline": proc.cmdline()[-3:]}
    except psutil.NoSuchProcess:
        return {"pid": proc.pid, "status": "gone"}
