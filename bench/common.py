"""What every benchmark script needs: the repository root, a log line, a loopback port,
timestamps, child processes, and what a report says about the machine and the code measured.

Importing it sets HF_HUB_OFFLINE and RAY_USAGE_STATS_ENABLED (unless set): the benchmarks
load only bundled models and report nothing, and the first must be set before any model
library is imported."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import psutil

from storage.models import TERMINAL_STATUSES

ROOT = Path(__file__).resolve().parents[1]
FIGURES_FILE = ROOT / "bench" / "README-figures.md"
TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)  # as the API writes them

T = TypeVar("T")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_section(text: str, path: Path, script: str) -> None:
    """Put `text` in `path` between the markers of `script` (e.g. "full_job.py"), replacing
    that script's earlier section and keeping everything else (other scripts' sections,
    hand-written notes); a first section goes at the end."""
    begin, end = f"<!-- bench/{script}: begin -->", f"<!-- bench/{script}: end -->"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    section = f"{begin}\n{text.rstrip()}\n{end}\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: section, old, count=1)
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + section
    path.write_text(new, encoding="utf-8")


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_ts(value: str) -> float:
    """ISO 8601 (with "Z") to epoch seconds; a naive time is UTC."""
    return epoch(datetime.fromisoformat(value.replace("Z", "+00:00")))


def epoch(dt: datetime) -> float:
    """Epoch seconds; a naive time (as SQLite gives them back) is UTC."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    """Until `url` answers 200; RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")
            time.sleep(0.2)


@contextlib.contextmanager
def child(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """`python ARGS` with the repository importable and its stdout piped; stopped at exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def temp_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A scratch directory for one run, removed at the end unless `keep`."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"temp dir {tmp}")
    try:
        yield tmp
    finally:
        if keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def attempt(work: Callable[[], T], problems: list[str]) -> tuple[T | None, BaseException | None]:
    """`work()`, or its failure noted in `problems` and handed back: the report still shows
    what was measured before it; `reraise_interrupt` after printing it."""
    try:
        return work(), None
    except BaseException as exc:
        problems.append(f"benchmark aborted: {type(exc).__name__}: {exc}")
        return None, exc


def reraise_interrupt(failed: BaseException | None) -> None:
    """Ctrl-C and SystemExit go on once the report is out; other failures are an exit code."""
    if failed is not None and not isinstance(failed, Exception):
        raise failed


def load_text(decimals: int = 2) -> str:
    return ", ".join(f"{x:.{decimals}f}" for x in os.getloadavg())


def machine_text() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB memory"
    return (
        f"{os.cpu_count()} cores ({model}), {memory}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def tree_text() -> str:
    """The commit of the code measured, and whether tracked files differed from it."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return f"{ROOT} (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")
