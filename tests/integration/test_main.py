"""`make serve` / main.py as real processes: which Ray it uses, and how it stops.

Each test starts its own Ray instance in a child process, with RAY_TMPDIR (Ray's temp root,
/tmp by default) pointing at a short temporary directory: the instance's session and any
`ray_current_cluster` file stay apart from every other Ray instance on the machine,
including the one the other integration tests share. Processes are found and ended by
pid: each child starts a session of its own, and every Ray process it starts belongs to it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
RAY_CLI = str(Path(PYTHON).parent / "ray")

HEALTHY_TIMEOUT_S = 240.0  # replicas load Whisper and spaCy: slow on 2 busy cores
STOP_TIMEOUT_S = 120.0
GONE_TIMEOUT_S = 60.0

pytestmark = pytest.mark.timeout(900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: Ray's unix sockets live in its session
    directory under RAY_TMPDIR, and a socket path is limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="vpa-main-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def vpa_env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        API_PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp / 'vpa.db'}",
        ARTIFACT_DIR=str(tmp / "artifacts"),
        SCRATCH_DIR=str(tmp / "scratch"),
        LOG_FILE=str(tmp / "vpa.log"),
        RAY_TMPDIR=str(tmp),
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        # HAProxy's own ports, free ones: the tests' Ray instance holds others meanwhile
        HAPROXY_STATS_PORT=str(_free_port()),
        HAPROXY_METRICS_PORT=str(_free_port()),
    )
    return env


class Child:
    """A process started in a session of its own, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], out: Path) -> None:
        self.out = out
        with out.open("wb") as sink:
            self.popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return self.text()[-chars:]

    def session(self) -> list[psutil.Process]:
        """The live processes of this child's session: it, and all it started."""
        return session_processes(self.pid)

    def kill_all(self) -> None:
        """SIGKILL, by pid, every live process of the child's session (the child too)."""
        for proc in self.session():
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie has ended; a reused pid is another process)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def session_processes(sid: int) -> list[psutil.Process]:
    procs = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                procs.append(proc)
        except (ProcessLookupError, PermissionError):
            pass
    return _alive(procs)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, child: Child | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if child is not None and child.popen.poll() is not None:
            raise AssertionError(
                f"{what}: the process ended ({child.popen.returncode}) first:\n{child.tail()}"
            )
        if time.monotonic() > deadline:
            tail = child.tail() if child is not None else ""
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.5)


def wait_healthy(port: int, child: Child) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, HEALTHY_TIMEOUT_S, "GET /health 200", child)


def wait_gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Wait for these processes to end; the ones still running after GONE_TIMEOUT_S."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.5)
    return _alive(procs)


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def describe(procs: list[psutil.Process]) -> list[str]:
    return [f"{proc.pid} {cmdline(proc)[:120]}" for proc in procs]


def assert_stopped_cleanly(child: Child, before: list[psutil.Process]) -> None:
    """vpa said it stopped, and no process of its Ray instance is left."""
    text = child.text()
    assert "vpa stopped (SIGTERM)" in text, child.tail()
    # vpa's own errors; lines that Ray workers print come with a "(name pid=...)" prefix.
    assert not re.search(r"^Traceback", text, re.MULTILINE), child.tail()
    left = wait_gone([*before, *child.session()])
    assert not left, f"left running: {describe(left)}\n{child.tail()}"


@contextmanager
def stale_ray_head(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """What a crashed `ray start --head` leaves: its ray_current_cluster file, naming a head
    that is gone. Every process of the head is killed with SIGKILL, by pid. Yields the
    address in the file."""
    address_file = tmp / "ray" / "ray_current_cluster"  # RAY_TMPDIR/ray: Ray's default
    head = Child(
        [
            RAY_CLI,
            "start",
            "--head",
            "--block",
            f"--port={_free_port()}",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
        ],
        env,
        tmp / "ray-start.out",
    )
    try:
        wait_for(address_file.exists, 120, "ray start --head writes ray_current_cluster", head)
        wait_for(lambda: "Ray runtime started" in head.text(), 120, "ray start --head", head)
        address = address_file.read_text().strip()
        processes = [*head.session(), *descendants(head.pid)]
        assert len(processes) > 2, describe(processes)  # the CLI, gcs_server, raylet, ...
        for proc in processes:
            proc.kill()
        left = wait_gone(processes)
        assert not left, f"the stale head's processes survived: {describe(left)}"
        assert address_file.read_text().strip() == address  # left behind, as after a crash
        yield address
    finally:
        head.kill_all()


def test_make_serve_starts_its_own_ray_beside_a_stale_head_and_stops_on_sigterm(
    short_tmp: Path,
) -> None:
    """`make serve` where a crashed `ray start --head` left its address file: vpa starts a
    Ray instance of its own (a plain `ray.init()` would join the dead head); SIGTERM to make,
    what `docker stop` sends to PID 1, stops vpa and every process of its Ray instance."""
    port = _free_port()
    env = vpa_env(short_tmp, port)
    with stale_ray_head(short_tmp, env) as stale_address:
        # The trap: a plain ray.init() (what main.py used to call) tries to join the dead
        # head; it would retry for many minutes before failing.
        plain = Child([PYTHON, "-c", "import ray; ray.init()"], env, short_tmp / "plain-init.out")
        try:
            joining = f"Connecting to existing Ray cluster at address: {stale_address}"
            wait_for(lambda: joining in plain.text(), 120, "plain ray.init() joins", plain)
        finally:
            plain.kill_all()

        make = Child(["make", "serve"], env, short_tmp / "make.out")
        try:
            wait_healthy(port, make)
            text = make.text()
            assert "vpa: starting a local Ray instance" in text, make.tail()
            assert "Started a local Ray instance" in text, make.tail()
            assert "Connecting to existing Ray cluster" not in text, make.tail()
            assert stale_address not in text, make.tail()
            before = [*make.session(), *descendants(make.pid)]
            assert any("main.py" in cmdline(p) for p in before), describe(before)

            make.popen.send_signal(signal.SIGTERM)
            returncode = make.popen.wait(timeout=STOP_TIMEOUT_S)
            # make forwards the SIGTERM to vpa, waits for it, then re-raises the signal on
            # itself: GNU make's status is that of a SIGTERM whatever its child did. vpa's
            # own exit code shows in make's output: a non-zero one prints "make: *** [...]
            # Error N".
            assert returncode == -signal.SIGTERM, make.tail()
            assert "make: ***" not in make.text(), make.tail()
            assert_stopped_cleanly(make, before)
        finally:
            make.kill_all()


def test_sigterm_during_start_up_stops_cleanly(short_tmp: Path) -> None:
    port = _free_port()
    make = Child(["make", "serve"], vpa_env(short_tmp, port), short_tmp / "make.out")
    try:
        # Ray has begun to start its processes: its session directory exists.
        session = short_tmp / "ray" / "session_latest"
        wait_for(session.exists, 180, "Ray starts", make)
        vpa = next(p for p in make.session() if "main.py" in cmdline(p))
        before = [*make.session(), *descendants(make.pid)]

        vpa.send_signal(signal.SIGTERM)  # to the Python process, under make
        assert make.popen.wait(timeout=STOP_TIMEOUT_S) == 0, make.tail()
        assert "vpa is serving" not in make.text(), make.tail()
        assert_stopped_cleanly(make, before)
    finally:
        make.kill_all()
