"""`make browser` and `make espeak` (steps of `make test`): Debian's chromium for the browser
tests and espeak-ng for the benchmarks' generated speech, installed when missing; where they
cannot be, make stops and says so (the tests are never skipped)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (make target, the command it looks for, what make says when it cannot install it)
TARGETS = [
    (
        "browser",
        "chromium",
        "make test needs Debian's chromium for the browser tests: apt-get install chromium",
    ),
    (
        "espeak",
        "espeak-ng",
        "make test needs Debian's espeak-ng for the benchmarks' generated speech: "
        "apt-get install espeak-ng",
    ),
]


def _make(target: str, path: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None
    return subprocess.run(
        [make, "--no-print-directory", target],
        cwd=ROOT,
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("target", "command", "message"), TARGETS)
def test_without_the_tool_or_apt_get_make_stops_with_a_clear_message(
    tmp_path: Path, target: str, command: str, message: str
) -> None:
    # a PATH holding only what the recipe needs besides them: no tool, no apt-get, no sudo
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id",):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    done = _make(target, str(bin_dir))
    assert done.returncode != 0, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert f"{command} is missing" in done.stdout


@pytest.mark.parametrize(("target", "command", "message"), TARGETS)
def test_with_the_tool_on_the_path_make_does_nothing(
    tmp_path: Path, target: str, command: str, message: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / command  # `command -v` is all the step asks
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    done = _make(target, str(bin_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""
