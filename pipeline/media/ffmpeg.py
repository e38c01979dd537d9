"""The ffmpeg binary: find it, and run it with progress and cancellation.

ffmpeg subprocesses transcode, cut and mux; what a file holds is read in-process with PyAV
(`pipeline.media.probe`). Every ffmpeg failure becomes a `MediaError` here, so the stages
never look at exit codes or stderr themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from pipeline.errors import MediaError, StageCancelled, StageTimeout
from pipeline.types import CancelToken, ProgressCallback

CANCEL_POLL_S = 0.1
ENCODERS_TIMEOUT_S = 60.0
STDERR_TAIL_LINES = 12
_PR_SET_PDEATHSIG = 1


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: imageio-ffmpeg's bundled one, else ffmpeg on PATH."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise MediaError(
                "ffmpeg is not installed (neither imageio-ffmpeg nor ffmpeg on PATH)",
                code="ffmpeg_missing",
            ) from None
        return found


@functools.cache
def has_encoder(name: str) -> bool:
    """Whether this ffmpeg build has the encoder `name` (e.g. "libmp3lame")."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-encoders"],
        capture_output=True,
        text=True,
        timeout=ENCODERS_TIMEOUT_S,
        check=False,
    ).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


# ----------------------------------------------------------------------------- run


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when its parent dies.

    A Ray worker that is killed (OOM, node loss, `ray.cancel(force=True)`) gets no chance to
    clean up; without this its ffmpeg would keep running as an orphan. The signal fires when
    the *thread* that forked exits, which is fine: the caller blocks until the child ends.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _format_s(seconds: float) -> str:
    return f"{seconds:.1f}"


class _ProgressParser:
    """Turns `-progress pipe:1` key=value blocks into progress callbacks.

    Every message names the child ("... s processed (ffmpeg pid 1234)"): whichever report
    reaches the job's status or event log, it says which process does the work.
    """

    def __init__(
        self, expected_duration_s: float | None, progress: ProgressCallback | None, pid: int
    ):
        self.expected_duration_s = expected_duration_s
        self.progress = progress
        self.pid = pid
        self._buffer = b""
        self._out_time_s = 0.0
        self._last_fraction = -1.0

    def feed(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                self._out_time_s = max(int(value) / 1e6, 0.0)
            elif key == "progress":
                self._report(done=value == "end")

    def _report(self, *, done: bool) -> None:
        if self.progress is None:
            return
        expected = self.expected_duration_s
        if done:
            fraction = 1.0
        elif expected:
            fraction = min(self._out_time_s / expected, 0.999)
        else:
            fraction = 0.0
        if fraction < self._last_fraction:
            return
        self._last_fraction = fraction
        total = f"/{_format_s(expected)}" if expected else ""
        processed = f"{_format_s(self._out_time_s)}{total} s processed"
        self.progress(fraction, f"{processed} (ffmpeg pid {self.pid})")

    def started(self) -> None:
        """The first report, before ffmpeg has processed anything: which process runs."""
        if self.progress is not None:
            self.progress(0.0, f"ffmpeg pid {self.pid} running")


def run_ffmpeg(
    args: list[str],
    *,
    expected_duration_s: float | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    timeout_s: float | None = None,
) -> list[str]:
    """Run `ffmpeg ARGS`, reporting progress and honouring cancellation and a timeout.

    `args` are everything after the global options (inputs, filters, outputs); `-y` is added
    so a stale output never blocks on a prompt. Progress is out_time / expected_duration_s;
    the first report, sent as soon as the child exists, is "ffmpeg pid N running", and every
    later one ends "(ffmpeg pid N)", so whoever watches the job can tell the process apart.
    The child is killed on cancel (StageCancelled), timeout (StageTimeout) and any other
    exception, KeyboardInterrupt included (how Ray interrupts a task). A non-zero exit
    raises MediaError(code="ffmpeg_failed") with the tail of ffmpeg's stderr.

    Returns the error lines ffmpeg printed on a successful run (e.g. "partial file" when an
    input is truncated); callers decide whether they matter.
    """
    stderr_tail: deque[str] = deque(maxlen=200)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    proc = _start(_command(args))
    assert proc.stdout is not None and proc.stderr is not None
    stderr_reader = threading.Thread(
        target=_drain_lines, args=(proc.stderr, stderr_tail), name="ffmpeg-stderr", daemon=True
    )
    stderr_reader.start()
    parser = _ProgressParser(expected_duration_s, progress, proc.pid)
    try:
        parser.started()
        _follow(proc, parser, cancel, deadline, timeout_s)
    except BaseException:
        _kill(proc)
        raise
    finally:
        stderr_reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    _check_exit(proc, stderr_tail)
    return list(stderr_tail)


def _command(args: list[str]) -> list[str]:
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.25",
        "-y",
        *args,
    ]


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent(),
            start_new_session=True,  # a Ctrl-C in a terminal reaches us, and we kill the child
        )
    except OSError as exc:
        raise MediaError(f"ffmpeg could not be started: {exc}", code="ffmpeg_failed") from None


def _follow(
    proc: subprocess.Popen[bytes],
    parser: _ProgressParser,
    cancel: CancelToken | None,
    deadline: float | None,
    timeout_s: float | None,
) -> None:
    """Feed the progress lines to `parser` until the child has exited and closed stdout;
    raise StageCancelled or StageTimeout meanwhile (the caller kills the child)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        stdout_open = True
        while stdout_open or proc.poll() is None:
            if cancel is not None and cancel.cancelled:
                raise StageCancelled("Cancelled while ffmpeg was running")
            if deadline is not None and time.monotonic() > deadline:
                raise StageTimeout(f"ffmpeg did not finish within {timeout_s:g} s")
            if not stdout_open:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(CANCEL_POLL_S)
                continue
            if selector.select(CANCEL_POLL_S):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if chunk:
                    parser.feed(chunk)
                else:
                    stdout_open = False
                    selector.unregister(proc.stdout)


def _check_exit(proc: subprocess.Popen[bytes], stderr_tail: deque[str]) -> None:
    if proc.returncode == 0:
        return
    tail = "\n".join(list(stderr_tail)[-STDERR_TAIL_LINES:]) or "(no output)"
    killed = proc.returncode < 0
    status = f"killed by signal {-proc.returncode}" if killed else f"exit {proc.returncode}"
    # a signal from outside (usually the OOM killer) may not happen again; a bad input will
    raise MediaError(f"ffmpeg failed ({status}): {tail}", code="ffmpeg_failed", retryable=killed)


def _drain_lines(stream: object, sink: deque[str]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for raw in stream:  # type: ignore[attr-defined]
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                sink.append(line)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def remove_quietly(*paths: str | os.PathLike[str]) -> None:
    """Delete files that may or may not exist (half-written outputs after a failure)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
