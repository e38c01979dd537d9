"""`make serve` / `python main.py`: start a local Ray instance (or join RAY_ADDRESS), deploy
vpa, serve until SIGINT (Ctrl-C) or SIGTERM (what Docker and Kubernetes send).

Listens on API_HOST:API_PORT (default http://127.0.0.1:8000): HAProxy, Ray Serve's HAProxy
ingress, forwarding to the Ingress replicas (INGRESS_PROXY=serve: Serve's Python proxy).
The Ray dashboard for monitoring runs at http://127.0.0.1:8265 when Ray is started here.

Ray: with RAY_ADDRESS set (Ray's own variable) vpa joins that cluster; without it vpa always
starts its own local Ray instance (`address="local"`), whatever else runs on the machine. A
plain `ray.init()` would join the cluster that the last `ray start` on this machine recorded
in /tmp/ray/ray_current_cluster, even after that head has died.

Database: before Ray starts, the database is upgraded to the newest schema revision
(docs/migrations.md). One vpa must not run on (a newer vpa's schema) ends it with exit code 1
and the reason on one line.

Signals: the first SIGTERM or SIGINT stops vpa, start-up included: Serve and Ray are shut
down (a local Ray instance takes all its processes with it) and the exit code is 0; jobs
that were processing resume from their last checkpoint on the next start. The handler only
sets a flag, which the main thread checks between bounded steps and while it waits for the
replicas: an exception raised into the middle of `ray.init` (what Ray's own handler,
`sys.exit(15)`, would do) can leave Ray processes running. Two of Ray's handlers are kept
out: the one `ray.init` installs when it starts, and the crash handler of the core worker
it creates (a stack trace, then the signal passed on), which vpa replaces once `ray.init`
returns. Last, any process started under vpa that outlived the shutdown (seen once: Serve's
HAProxy child, when Serve's controller did not stop within its 30 s) is stopped by its pid:
SIGTERM, then SIGKILL after LEFTOVER_GRACE_S, and named on one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from storage.migrations.errors import SchemaError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
APP_NAME = "vpa"
POLL_S = 0.5
LEFTOVER_GRACE_S = 5.0  # after Ray's shutdown, how long a leftover process gets to end


class StartRefused(Exception):
    """A setting this service must not start with (the message says which and why)."""


class StopSignals:
    """The first SIGTERM or SIGINT. Later ones change nothing: `make` forwards a SIGTERM
    that a kill of the whole process group has already delivered, and the shutdown must
    not be cut short."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: int | None = None
        self.exit_at_once = False

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        self.requested.set()
        if self.exit_at_once:
            print(f"vpa stopped ({self.name}) while joining the Ray cluster", flush=True)
            os._exit(0)

    @property
    def stopped(self) -> bool:
        return self.requested.is_set()

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else "no signal"

    def wait(self) -> None:
        while not self.requested.wait(POLL_S):  # each wait also ends with a signal
            pass


@contextlib.contextmanager
def ray_keeps_off_sigterm() -> Iterator[None]:
    """Keep `ray.init` from installing its own SIGTERM handler (`sys.exit(15)`)."""
    import ray._private.utils as ray_utils

    original = getattr(ray_utils, "set_sigterm_handler", None)
    if original is None:  # another Ray version: its handler is replaced after ray.init
        yield
        return
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = original


def ray_init(signals: StopSignals, **kwargs: Any) -> None:
    """`ray.init(**kwargs)`, vpa's handlers in charge before, during and after it. A local
    start runs to its end (seconds) before a stop is acted on. Joining a cluster starts
    nothing here, so a stop then exits at once: joining an unreachable RAY_ADDRESS retries
    for minutes (the signal is handled when Ray's current connection attempt returns)."""
    import ray

    signals.exit_at_once = kwargs.get("address") != "local"
    if signals.exit_at_once and signals.stopped:
        return
    try:
        with ray_keeps_off_sigterm():
            ray.init(**kwargs)
    finally:
        signals.exit_at_once = False
        signals.install()  # the core worker's crash handler took SIGTERM


def wait_until_running(signals: StopSignals) -> bool:
    """Wait for the app to be RUNNING (replicas load their models); False if stopped first."""
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    while not signals.requested.wait(POLL_S):
        app = serve.status().applications.get(APP_NAME)
        if app is None:
            continue
        if app.status == ApplicationStatus.RUNNING:
            return True
        if app.status == ApplicationStatus.DEPLOY_FAILED:
            raise RuntimeError(f"deploying {APP_NAME} failed: {app.message}")
    return False


def serve_until_stopped(signals: StopSignals) -> None:
    # Imported here, the handlers installed: these imports take seconds.
    import ray
    from ray import serve

    from config.logging import setup_logging
    from config.ray_env import ray_env
    from serve_app import build_app, load_settings
    from storage.db import upgrade_database

    settings = load_settings()
    exposure = settings.anonymous_exposure()
    if exposure is not None:
        raise StartRefused(exposure)
    setup_logging(settings, role="main")  # an unwritable LOG_FILE fails here, before Ray
    if signals.stopped:
        return
    # The schema first (migrations): a database vpa must not run on stops it before Ray starts.
    upgrade_database(settings.resolved_database_url())
    if signals.stopped:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    # Ray's and Serve's own variables (INGRESS_PROXY, idle stage workers kept): a local
    # instance's processes inherit them from here; a cluster keeps those its nodes were
    # started with (docs/deploy.md).
    os.environ.update(ray_env(settings))
    runtime_env = {"env_vars": {"PYTHONPATH": here, "HF_HUB_OFFLINE": "1"}}
    init_args: dict[str, Any] = {"namespace": settings.ray_namespace, "runtime_env": runtime_env}
    address = os.environ.get("RAY_ADDRESS") or None
    if address:
        print(f"vpa: joining the Ray cluster at {address} (RAY_ADDRESS)", flush=True)
        init_args["address"] = address
    else:
        print("vpa: starting a local Ray instance (RAY_ADDRESS is not set)", flush=True)
        init_args.update(address="local", include_dashboard=True)
    serve_started = False
    try:
        ray_init(signals, **init_args)
        if signals.stopped:
            return
        serve.start(http_options={"host": settings.api_host, "port": settings.api_port})
        serve_started = True
        if signals.stopped:
            return
        # Deploy without waiting, then wait here, where a stop signal is seen.
        serve.run_many(
            [serve.RunTarget(build_app(), name=APP_NAME, route_prefix="/")],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
        if not wait_until_running(signals):
            return
        url = f"http://{settings.api_host}:{settings.api_port}"
        print(f"vpa is serving on {url} (docs: {url}/docs); Ctrl-C or SIGTERM stops it", flush=True)
        signals.wait()
    finally:
        print("vpa: shutting down Serve and Ray", flush=True)
        started = descendants()  # before the shutdown: every process started under vpa
        if serve_started:
            serve.shutdown()
        ray.shutdown()  # a local instance: its processes too, after a failed start as well
        stopped = stop_leftovers(started, LEFTOVER_GRACE_S)
        if stopped:
            print(f"vpa: stopped processes left after the shutdown: {stopped}", flush=True)


def descendants() -> list[Any]:
    """This process's descendants now (psutil.Process objects, which know their start time,
    so a pid taken over by another process later is never mistaken for one of them)."""
    import psutil

    return list(psutil.Process().children(recursive=True))


def stop_leftovers(processes: list[Any], grace_s: float) -> str:
    """Stop those of `processes` still running: give them `grace_s` to end on their own
    (a shutdown may still be taking them down), then SIGTERM, then SIGKILL after `grace_s`
    more. Returns them as "name (pid N), ..." ("" when none was left)."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    if not alive:
        return ""
    names = []
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            names.append(f"{proc.name()} (pid {proc.pid})")
            proc.terminate()
    _, still = psutil.wait_procs(alive, timeout=grace_s)
    for proc in still:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(still, timeout=grace_s)
    return ", ".join(names)


def main() -> int:
    signals = StopSignals()
    signals.install()
    try:
        serve_until_stopped(signals)
    except (SchemaError, StartRefused) as exc:
        print(f"vpa cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"vpa stopped ({signals.name})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
