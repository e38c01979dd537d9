"""Warm stage workers: every job slot keeps an idle Ray worker between jobs
(config/ray_env.py `worker_env`), even with more job slots than CPUs."""

from __future__ import annotations

import os
import time

import psutil
import pytest
import ray

from actors.stage_task import STAGE_NUM_CPUS
from config.ray_env import worker_env
from config.settings import Settings
from tests.integration.conftest import NAMESPACE

CPUS = 2
SLOTS = 3  # the default MAX_CONCURRENT_JOBS, more than CPUS
IDLE_KILL_S = 1.0  # Ray's idle_worker_killing_time_threshold_ms, its default


@ray.remote(num_cpus=STAGE_NUM_CPUS["fetch"])
def _stage_like(hold_s: float) -> int:
    time.sleep(hold_s)  # held, so that every task of the batch runs in a worker of its own
    return os.getpid()


def test_every_job_slot_keeps_an_idle_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    env = worker_env(Settings(_env_file=None, max_concurrent_jobs=SLOTS), CPUS)
    assert env == {"RAY_num_workers_soft_limit": str(SLOTS + 1)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the raylet started next inherits it
    ray.init(address="local", num_cpus=CPUS, include_dashboard=False, namespace=NAMESPACE)
    try:
        # one task per job slot and one for a job between two stages, all at once
        pids = set(ray.get([_stage_like.remote(1.5) for _ in range(SLOTS + 1)], timeout=120))
        assert len(pids) == SLOTS + 1
        time.sleep(4 * IDLE_KILL_S)  # Ray's default (as many as CPUs) would kill two by now
        assert {pid for pid in pids if psutil.pid_exists(pid)} == pids
        # and they are reused: the next batch starts no new worker
        assert set(ray.get([_stage_like.remote(1.5) for _ in range(SLOTS + 1)])) == pids
    finally:
        ray.shutdown()
