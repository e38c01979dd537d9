"""run_ffmpeg against the real ffmpeg binary (probing is tests/unit/test_probe.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import MediaError, StageCancelled, StageTimeout
from pipeline.media.ffmpeg import ffmpeg_exe, has_encoder, run_ffmpeg
from pipeline.types import CancelToken

# 30 s of tone produced in real time (-re): an ffmpeg run that lasts as long as we want
SLOW_ARGS = ["-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"]
REPO = Path(__file__).resolve().parents[2]


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [fraction for fraction, _ in self.calls]


def test_ffmpeg_binary_has_what_the_pipeline_needs() -> None:
    assert Path(ffmpeg_exe()).is_file()
    for encoder in ("libmp3lame", "flac", "pcm_s16le", "libx264", "aac"):
        assert has_encoder(encoder), encoder
    assert not has_encoder("no_such_encoder")


def test_run_reports_increasing_progress(tmp_path: Path) -> None:
    progress = Progress()
    out = tmp_path / "tone.wav"
    args = ["-f", "lavfi", "-i", "sine=duration=3", str(out)]
    assert run_ffmpeg(args, expected_duration_s=3.0, progress=progress, cancel=None) == []
    assert out.is_file()
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in progress.fractions)
    # the first report names the child at once, and every later one names it too
    first = re.fullmatch(r"ffmpeg pid (\d+) running", progress.calls[0][1])
    assert first is not None and progress.calls[0][0] == 0.0
    pid = first[1]
    assert all(message.endswith(f"(ffmpeg pid {pid})") for _, message in progress.calls[1:])
    assert progress.calls[-1][1].endswith(f"/3.0 s processed (ffmpeg pid {pid})")


def test_run_failure_carries_stderr(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="ffmpeg failed") as caught:
        run_ffmpeg(
            ["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.wav")],
            expected_duration_s=None,
            progress=None,
            cancel=None,
        )
    assert caught.value.code == "ffmpeg_failed"
    assert "No such file or directory" in caught.value.message
    assert not caught.value.retryable


def test_an_ffmpeg_that_cannot_start_is_a_media_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.media.ffmpeg.ffmpeg_exe", lambda: str(tmp_path / "no-ffmpeg"))
    with pytest.raises(MediaError, match="ffmpeg could not be started") as caught:
        run_ffmpeg(["-version"], expected_duration_s=None, progress=None, cancel=None)
    assert caught.value.code == "ffmpeg_failed" and not caught.value.retryable


def test_ffmpeg_killed_by_a_signal_is_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed = tmp_path / "ffmpeg"
    killed.write_text("#!/bin/sh\nkill -9 $$\n")
    killed.chmod(0o755)
    monkeypatch.setattr("pipeline.media.ffmpeg.ffmpeg_exe", lambda: str(killed))
    with pytest.raises(MediaError, match="killed by signal 9") as caught:
        run_ffmpeg(["-version"], expected_duration_s=None, progress=None, cancel=None)
    assert caught.value.code == "ffmpeg_failed" and caught.value.retryable


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The ffmpeg processes run_ffmpeg starts during the test."""
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return started


def _all_dead(procs: list[subprocess.Popen[bytes]]) -> bool:
    return bool(procs) and all(proc.poll() is not None for proc in procs)


def test_cancel_kills_ffmpeg_promptly(children: list[subprocess.Popen[bytes]]) -> None:
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    with pytest.raises(StageCancelled):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=None, cancel=cancel)
    assert _all_dead(children)
    # the run's ffmpeg was killed by a signal, not ended by itself: the cancel interrupted it
    runs = [proc for proc in children if "sine=duration=30" in str(proc.args)]
    assert len(runs) == 1 and runs[0].returncode < 0, [(p.args, p.returncode) for p in children]


def test_timeout_kills_ffmpeg(children: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(StageTimeout, match=r"0\.3 s"):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=None, cancel=None, timeout_s=0.3)
    assert _all_dead(children)


def test_keyboard_interrupt_kills_ffmpeg_and_propagates(
    children: list[subprocess.Popen[bytes]],
) -> None:
    # Ray interrupts a cancelled task with KeyboardInterrupt in its thread
    def interrupt(fraction: float, message: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=interrupt, cancel=None)
    assert _all_dead(children)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait a while for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="PR_SET_PDEATHSIG is Linux-only")
def test_ffmpeg_dies_with_its_parent_process() -> None:
    # the parent prints the pid of the ffmpeg it runs for 30 s
    script = (
        "import subprocess\n"
        "real_popen = subprocess.Popen\n"
        "def popen(*args, **kwargs):\n"
        "    proc = real_popen(*args, **kwargs)\n"
        "    if '-progress' in args[0]:\n"
        "        print(proc.pid, flush=True)\n"
        "    return proc\n"
        "subprocess.Popen = popen\n"
        "from pipeline.media.ffmpeg import run_ffmpeg\n"
        f"run_ffmpeg({SLOW_ARGS!r}, expected_duration_s=None, progress=None, cancel=None)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        ffmpeg_pid = int(parent.stdout.readline())
        time.sleep(0.2)
        assert _running(ffmpeg_pid)
        os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up, like an OOM kill
        parent.wait(timeout=5)
        deadline = time.monotonic() + 3
        while _running(ffmpeg_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(ffmpeg_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
        if parent.stdout is not None:
            parent.stdout.close()
