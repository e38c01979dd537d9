"""main.py's last step: processes started under vpa that outlived Ray's shutdown are stopped
by their own pid (SIGTERM, then SIGKILL), and named; ones that end on their own are left
alone. Real child processes, each noting in a file how it ended."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

import main

# A child that notes "terminated" on SIGTERM (or ignores it), "finished" when done by itself.
CHILD = """
import signal, sys, time
note, ignore, seconds = sys.argv[1], sys.argv[2] == "ignore", float(sys.argv[3])
def on_term(*_):
    open(note, "w").write("terminated"); sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else on_term)
print("ready", flush=True)
time.sleep(seconds)
open(note, "w").write("finished")
"""


def _start(note: Path, sigterm: str, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(note), sigterm, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.stdout.close()
    return child


def test_a_leftover_is_terminated_and_one_that_ignores_sigterm_killed(tmp_path: Path) -> None:
    polite = _start(tmp_path / "polite", "obey", 120)
    stubborn = _start(tmp_path / "stubborn", "ignore", 120)
    try:
        mine = [p for p in main.descendants() if p.pid in {polite.pid, stubborn.pid}]
        assert len(mine) == 2
        named = main.stop_leftovers(mine, grace_s=0.5)
        assert f"(pid {polite.pid})" in named and f"(pid {stubborn.pid})" in named
        assert not any(p.is_running() for p in mine)
        assert (tmp_path / "polite").read_text() == "terminated"  # SIGTERM was enough
        assert not (tmp_path / "stubborn").exists()  # it ignored SIGTERM: SIGKILL ended it
    finally:
        for child in (polite, stubborn):
            child.kill()
            child.wait()


def test_processes_that_end_on_their_own_are_not_touched(tmp_path: Path) -> None:
    quick = _start(tmp_path / "quick", "obey", 0.3)
    try:
        assert main.stop_leftovers([psutil.Process(quick.pid)], grace_s=30.0) == ""
        assert (tmp_path / "quick").read_text() == "finished"  # no signal reached it
    finally:
        quick.kill()
        quick.wait()


def test_nothing_left_is_nothing_to_say() -> None:
    assert main.stop_leftovers([], grace_s=0.1) == ""
