"""`make browser` (a step of `make test`): Debian's chromium for the browser tests, installed
when missing; where it cannot be, make stops and says so (the tests are never skipped)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "make test needs Debian's chromium for the browser tests: apt-get install chromium"


def _make_browser(path: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None
    return subprocess.run(
        [make, "--no-print-directory", "browser"],
        cwd=ROOT,
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_chromium_or_apt_get_make_stops_with_a_clear_message(tmp_path: Path) -> None:
    # a PATH holding only what the recipe needs besides them: no chromium, no apt-get, no sudo
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id",):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    done = _make_browser(str(bin_dir))
    assert done.returncode != 0, done.stdout + done.stderr
    assert MESSAGE in done.stderr, done.stderr


def test_with_chromium_on_the_path_make_browser_does_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "chromium"  # `command -v` is all the step asks
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    done = _make_browser(str(bin_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""
