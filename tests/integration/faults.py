"""Processes of the running application, found through Ray and each one's own report of its
pid (never by name), and killed with SIGKILL the way a crash or the OOM killer would.

An actor reports its pid by running `os.getpid()` inside itself (`__ray_call__`); Serve
replicas are the named actors `SERVE_REPLICA::<app>#<deployment>#<id>` in the `serve`
namespace.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
import ray

from tests.integration.processes import describe, gone, wait_gone

SERVE_NAMESPACE = "serve"
REPLICA_PREFIX = "SERVE_REPLICA::"


def _own_pid(_actor: Any) -> int:
    return os.getpid()


def actor_pid(handle: Any, timeout_s: float = 60.0) -> int:
    """The pid of the process the actor runs in, as the actor itself reports it."""
    return int(ray.get(handle.__ray_call__.remote(_own_pid), timeout=timeout_s))


def replica_pids(deployment: str, app: str = "vpa") -> list[int]:
    """The pids of the live replicas of `deployment`, each reported by the replica."""
    prefix = f"{REPLICA_PREFIX}{app}#{deployment}#"
    names = [
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == SERVE_NAMESPACE and entry["name"].startswith(prefix)
    ]
    return [actor_pid(ray.get_actor(name, namespace=SERVE_NAMESPACE)) for name in names]


def one_replica_pid(deployment: str, timeout_s: float = 120.0) -> int:
    """The pid of the deployment's only live replica (waits until there is exactly one)."""
    deadline = time.monotonic() + timeout_s
    pids: list[int] = []
    while time.monotonic() < deadline:
        try:
            pids = replica_pids(deployment)
        except (ray.exceptions.RayActorError, ValueError):
            pids = []  # one was dying while asked
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"{deployment} has not exactly one live replica: {pids}")


def sigkill(proc: psutil.Process) -> None:
    """SIGKILL this exact process and wait until it is gone."""
    proc.kill()
    assert wait_gone(proc), f"SIGKILL did not end it: {describe(proc)}"


def wait_new_pid(find: Any, old: int, timeout_s: float = 120.0) -> int:
    """`find()` until it answers a live pid other than `old` (a replacement was started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid = int(find())
        except (ray.exceptions.RayActorError, ValueError, AssertionError):
            pid = old
        try:
            if pid != old and not gone(psutil.Process(pid)):
                return pid
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no replacement for pid {old} within {timeout_s:g} s")
