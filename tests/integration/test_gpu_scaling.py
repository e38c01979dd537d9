"""GPU placement and autoscaling of the Transcriber, on GPUs Ray is told exist.

The session's Ray instance declares 4 GPUs (`ray.init(num_gpus=4)` works on a CPU
machine); with ENABLE_GPU each model replica must take one, and under load the Transcriber
must scale out to its maximum and no further. CUDA itself is absent, so the models run on
the CPU ("auto" device), which is what a GPU-less node of a mixed cluster does too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import ray
from ray import serve

from tests.integration.conftest import VpaApp


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(with_models=True, enable_gpu=True)


def _replica_infos(deployment: str, expected: int) -> dict[str, dict[str, Any]]:
    """`info()` of every replica (asked until each has answered at least once)."""
    handle = serve.get_deployment_handle(deployment, app_name="vpa")
    infos: dict[str, dict[str, Any]] = {}
    for _ in range(200):
        info = handle.info.remote().result()
        infos[info["replica"]] = info
        if len(infos) >= expected:
            break
    return infos


def _running(deployment: str) -> int:
    status = serve.status().applications["vpa"].deployments[deployment]
    states: dict[Any, int] = dict(status.replica_states)
    return sum(n for state, n in states.items() if str(getattr(state, "value", state)) == "RUNNING")


def test_model_replicas_take_one_gpu_each(app: VpaApp) -> None:
    for deployment in ("Transcriber", "Analyzer"):
        infos = _replica_infos(deployment, _running(deployment))
        assert infos
        for info in infos.values():
            assert info["assigned_resources"].get("GPU") == 1.0, info
            assert len(info["gpu_ids"]) == 1
    assert ray.available_resources().get("GPU", 0) <= 4 - 2


def test_transcriber_scales_between_its_bounds(app: VpaApp, speech_sample: Any) -> None:
    handle: Any = serve.get_deployment_handle("Transcriber", app_name="vpa").options(stream=True)
    seen: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for item in handle.transcribe.remote(str(speech_sample.path), {"language": "en"}):
                if item["type"] == "error":
                    raise AssertionError(item)

    def watch() -> None:
        while not stop.is_set():
            seen.append(_running("Transcriber"))
            time.sleep(0.25)

    threads = [threading.Thread(target=load) for _ in range(6)] + [threading.Thread(target=watch)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not seen or max(seen) < 2):
            time.sleep(0.5)
        time.sleep(3)  # keep the load on: it must not scale past the maximum
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert min(seen) >= 1
    assert max(seen) == 2, seen
    infos = _replica_infos("Transcriber", 2)
    assert len(infos) == 2
    assert all(i["assigned_resources"].get("GPU") == 1.0 for i in infos.values())
    assert len({i["gpu_ids"][0] for i in infos.values()}) == 2  # a GPU each, not shared
