"""Helpers the benchmark scripts share: the loopback media server child and what a report
says about the code measured."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serve_media(root: str) -> None:
    """Child process: the tests' loopback media server; prints its base URL, runs forever."""
    from tests.fixtures.media import MediaServer

    server = MediaServer(Path(root))
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()


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
