"""The ffmpeg binary: find it, probe media with it, run it with progress and cancellation.

imageio-ffmpeg ships an ffmpeg binary but no ffprobe, so `probe` parses the stream summary
that `ffmpeg -i FILE` prints on stderr. Every ffmpeg failure becomes a `MediaError` here, so
the stages never look at exit codes or stderr themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import MediaError, StageCancelled, StageTimeout
from pipeline.types import CancelToken, ProgressCallback

CANCEL_POLL_S = 0.1
PROBE_TIMEOUT_S = 60.0
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
        timeout=PROBE_TIMEOUT_S,
        check=False,
    ).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


@dataclass(frozen=True)
class MediaInfo:
    """What `ffmpeg -i` says about a file: the container and its first video/audio stream."""

    format_name: str
    duration_s: float | None
    has_video: bool
    has_audio: bool
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_sample_rate_hz: int | None = None
    audio_channels: int | None = None
    # Degrees (0, 90, 180, 270) a player turns the video, from its display matrix: phones
    # record upright video sideways and say so there.
    rotation: int = 0

    @property
    def is_still_image(self) -> bool:
        # png/jpeg/webp files open as a one-frame "video" through the image demuxers
        return self.format_name == "image2" or self.format_name.endswith("_pipe")


# ----------------------------------------------------------------------------- probe

_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from ")
_DURATION_RE = re.compile(r"^\s+Duration: (?:(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)|N/A)")
_STREAM_RE = re.compile(r"^\s+Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<rest>.*)$")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_FPS_RE = re.compile(r"^([\d.]+)(k?) fps$")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_CHANNELS_RE = re.compile(r"^(\d+) channels\b")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "4.1": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "hexagonal": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
    "7.1(wide)": 8,
    "7.1(wide-side)": 8,
    "octagonal": 8,
}
# ffmpeg guessed the demuxer from the file name alone: the bytes matched nothing
_LOW_SCORE_HINT = "detected only with low score"
_INVALID_DATA = "Invalid data found when processing input"
_OPEN_ERROR_RE = re.compile(r"Error opening input: (?P<why>.+)$", re.MULTILINE)


def _split_top_level(text: str) -> list[str]:
    """Split "h264 (High), yuv420p(tv, bt709), 1280x720" on commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_probe(stderr: str) -> MediaInfo | None:
    fmt: str | None = None
    duration_s: float | None = None
    fields: dict[str, object] = {}
    in_video = False  # inside the chosen video stream's lines (its side data follows it)
    for line in stderr.splitlines():
        if fmt is None:
            if match := _INPUT_RE.match(line):
                fmt = match["fmt"]
            continue
        if line.lstrip().startswith("Stream #"):
            in_video = False
        elif in_video and (match := _ROTATION_RE.search(line)):
            fields["rotation"] = round(float(match[1]) / 90) * 90 % 360
            continue
        if (match := _DURATION_RE.match(line)) and match["h"] is not None:
            duration_s = int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])
        elif match := _STREAM_RE.match(line):
            rest = match["rest"]
            parts = _split_top_level(rest)
            codec = parts[0].split()[0] if parts[0] else None
            if match["kind"] == "Video" and "video_codec" not in fields:
                if "(attached pic)" in rest:  # cover art in an audio file is not a video
                    continue
                fields["video_codec"] = codec
                in_video = True
                for part in parts[1:]:
                    if size := _SIZE_RE.match(part):
                        fields["width"], fields["height"] = int(size[1]), int(size[2])
                    elif fps := _FPS_RE.match(part):
                        fields["fps"] = float(fps[1]) * (1000 if fps[2] else 1)
            elif match["kind"] == "Audio" and "audio_codec" not in fields:
                fields["audio_codec"] = codec
                for index, part in enumerate(parts[1:], start=1):
                    if hz := _HZ_RE.match(part):
                        fields["audio_sample_rate_hz"] = int(hz[1])
                        if index + 1 < len(parts):
                            fields["audio_channels"] = _channel_count(parts[index + 1])
    if fmt is None:
        return None
    return MediaInfo(
        format_name=fmt,
        duration_s=duration_s,
        has_video="video_codec" in fields,
        has_audio="audio_codec" in fields,
        **fields,  # type: ignore[arg-type]
    )


def _channel_count(layout: str) -> int | None:
    if match := _CHANNELS_RE.match(layout):
        return int(match[1])
    return _LAYOUT_CHANNELS.get(layout.split(" ")[0])


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe a media file. Raises MediaError for missing, non-media or unreadable files.

    An ffmpeg that fails without saying why (no known open error in its output) is asked
    once more: twice, under heavy load, a probe of a good file failed that way and the same
    file read fine right after. If it fails again, the error is retryable and quotes ffmpeg.
    """
    try:
        return _probe_once(Path(path))
    except _UnexplainedProbeFailure:
        try:
            return _probe_once(Path(path))
        except _UnexplainedProbeFailure as again:
            raise MediaError(str(again), code="ffmpeg_failed", retryable=True) from None


class _UnexplainedProbeFailure(Exception):
    pass


def _probe_once(path: Path) -> MediaInfo:
    if not path.is_file():
        raise MediaError(f"The file {path.name} does not exist", code="file_missing")
    try:
        completed = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            preexec_fn=_die_with_parent(),
        )
    except subprocess.TimeoutExpired:
        raise MediaError(
            f"Reading {path.name} took longer than {PROBE_TIMEOUT_S:.0f} s; the file looks corrupt",
            code="corrupt_media",
        ) from None
    stderr = completed.stderr.decode("utf-8", errors="replace")
    info = _parse_probe(stderr)
    if info is not None:
        return info
    if completed.returncode < 0:  # killed from outside (memory pressure): may not happen again
        raise MediaError(
            f"ffmpeg was killed by signal {-completed.returncode} while reading {path.name}",
            code="ffmpeg_failed",
            retryable=True,
        )
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty, not a video or audio file", code="not_media")
    # ffmpeg could not open it: either no demuxer recognised the bytes (not media), or one did
    # and choked on them (a truncated download, a corrupt header), or the OS refused.
    match = _OPEN_ERROR_RE.search(stderr)
    if match is None:
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        raise _UnexplainedProbeFailure(
            f"ffmpeg could not read {path.name} and did not say why "
            f"(exit code {completed.returncode}; {last.strip()[:200] or 'no output'})"
        )
    why = match["why"].strip()
    if why != _INVALID_DATA:
        raise MediaError(f"{path.name} cannot be read: {why}", code="unreadable_file")
    reasons = [
        line.split("] ", 1)[1]
        for line in stderr.splitlines()
        if line.startswith("[in#0") and "] " in line and "Error opening input" not in line
    ]
    reasons = [reason for reason in reasons if _LOW_SCORE_HINT not in reason]
    if not reasons or _LOW_SCORE_HINT in stderr:
        raise MediaError(f"{path.name} is not a video or audio file", code="not_media")
    raise MediaError(
        f"{path.name} is truncated or corrupt and cannot be read ({reasons[-1]})",
        code="corrupt_media",
    )


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
    command = [
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
    stderr_tail: deque[str] = deque(maxlen=200)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent(),
            start_new_session=True,  # a Ctrl-C in a terminal reaches us, and we kill the child
        )
    except OSError as exc:
        raise MediaError(f"ffmpeg could not be started: {exc}", code="ffmpeg_failed") from None
    assert proc.stdout is not None and proc.stderr is not None
    stderr_reader = threading.Thread(
        target=_drain_lines, args=(proc.stderr, stderr_tail), name="ffmpeg-stderr", daemon=True
    )
    stderr_reader.start()
    parser = _ProgressParser(expected_duration_s, progress, proc.pid)
    try:
        parser.started()
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
    except BaseException:
        _kill(proc)
        raise
    finally:
        stderr_reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        tail = "\n".join(list(stderr_tail)[-STDERR_TAIL_LINES:]) or "(no output)"
        killed = proc.returncode < 0
        status = f"killed by signal {-proc.returncode}" if killed else f"exit {proc.returncode}"
        # a signal from outside (usually the OOM killer) may not happen again; a bad input will
        raise MediaError(
            f"ffmpeg failed ({status}): {tail}", code="ffmpeg_failed", retryable=killed
        )
    return list(stderr_tail)


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
