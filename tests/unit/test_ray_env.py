"""vpa's settings as Ray's and Ray Serve's environment variables (config/ray_env.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.ray_env import ray_env, serve_env, worker_env
from config.settings import Settings


def test_haproxy_is_the_default_with_its_ports() -> None:
    env = serve_env(Settings(_env_file=None, haproxy_stats_port=18404, haproxy_metrics_port=19101))
    assert env == {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": "18404",
        "RAY_SERVE_HAPROXY_METRICS_PORT": "19101",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
    }


def test_serve_proxy_turns_haproxy_off() -> None:
    assert serve_env(Settings(_env_file=None, ingress_proxy="serve")) == {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
        "RAY_SERVE_ENABLE_HA_PROXY": "0",
    }


@pytest.mark.parametrize(
    "field,value", [("ingress_proxy", "nginx"), ("haproxy_stats_port", 0), ("ingress_drain_s", -1)]
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({field: value})


@pytest.mark.parametrize(
    "slots,cpus,kept",
    [
        (3, 2, 4),  # more job slots than CPUs: one idle worker per slot and one more
        (2, 16, 16),  # never fewer than Ray's own default, one per CPU
        ("auto", 4, 5),  # "auto" is one job slot per CPU
    ],
)
def test_idle_workers_kept_cover_every_job_slot(slots: int | str, cpus: int, kept: int) -> None:
    settings = Settings(_env_file=None, max_concurrent_jobs=slots)
    assert worker_env(settings, cpus) == {"RAY_num_workers_soft_limit": str(kept)}


def test_ray_env_is_both() -> None:
    settings = Settings(_env_file=None, max_concurrent_jobs=3)
    assert ray_env(settings, 2) == {**serve_env(settings), **worker_env(settings, 2)}
