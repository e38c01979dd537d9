"""GPU placement and autoscaling of the model deployments, on GPUs Ray is told exist.

The session's Ray instance declares 4 GPUs (`ray.init(num_gpus=4)` works on a CPU
machine); with ENABLE_GPU each model replica must take the GPU share its settings give
(TRANSCRIBER_NUM_GPUS, ANALYZER_NUM_GPUS), and under load the Transcriber and the Analyzer
must scale out to their maximum and no further. CUDA itself is absent, so the models run
on the CPU ("auto" device), which is what a GPU-less node of a mixed cluster does too.
One GPU shared by both deployments is tested in tests/cluster/test_one_gpu.py.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve

from pipeline.options import AnalyzeOptions, TranscribeOptions
from storage.artifacts import job_key
from storage.stores import open_store, storage_config
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


def test_model_replicas_take_their_gpu_share(app: VpaApp) -> None:
    shares = {
        "Transcriber": app.settings.transcriber_num_gpus,
        "Analyzer": app.settings.analyzer_num_gpus,
    }
    assert shares == {"Transcriber": 0.4, "Analyzer": 0.1}  # the defaults share one GPU
    for deployment, share in shares.items():
        infos = _replica_infos(deployment, _running(deployment))
        assert infos
        for info in infos.values():
            assert info["assigned_resources"].get("GPU") == pytest.approx(share), info
            assert len(info["gpu_ids"]) == 1
    assert ray.available_resources().get("GPU", 0) < 4 - 0.4 - 0.1 + 1e-6


def _scale_under_load(deployment: str, call: Any) -> list[int]:
    """Replica counts of `deployment` seen while 6 threads keep calling `call()`."""
    seen: list[int] = []
    errors: list[dict[str, Any]] = []  # model errors, asserted below (not lost in a thread)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                errors.extend(item for item in call() if item["type"] == "error")
            except Exception as exc:  # a failed call, reported to the test below
                errors.append({"type": "exception", "error": repr(exc)})
                return

    def watch() -> None:
        while not stop.is_set():
            seen.append(_running(deployment))
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
    assert errors == []
    return seen


def test_both_model_deployments_scale_between_their_bounds(
    app: VpaApp, speech_sample: Any, tmp_path: Path
) -> None:
    """The Analyzer and the Transcriber under load at once: each scales out to its maximum
    (2) and no further, each new replica with its GPU share."""
    analyzer: Any = serve.get_deployment_handle("Analyzer", app_name="vpa").options(stream=True)
    text = " ".join([speech_sample.text] * 40)
    # The Transcriber reads audio from the artifact store, by key.
    copy = tmp_path / speech_sample.path.name
    shutil.copyfile(speech_sample.path, copy)
    key = job_key(uuid.uuid4(), copy.name)
    open_store(storage_config(app.settings)).put_file(copy, key)
    transcriber: Any = serve.get_deployment_handle("Transcriber", app_name="vpa").options(
        stream=True
    )
    calls = {
        "Analyzer": lambda: analyzer.analyze.remote(text, [], AnalyzeOptions(), "en"),
        "Transcriber": lambda: transcriber.transcribe.remote(key, TranscribeOptions(language="en")),
    }
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        loads = {name: pool.submit(_scale_under_load, name, call) for name, call in calls.items()}
        seen = {name: load.result() for name, load in loads.items()}
    shares = {"Analyzer": 0.1, "Transcriber": 0.4}
    for deployment, counts in seen.items():
        assert min(counts) >= 1, (deployment, counts)
        assert max(counts) == 2, (deployment, counts)
        infos = _replica_infos(deployment, 2)
        assert len(infos) == 2, deployment
        for info in infos.values():
            assert info["assigned_resources"].get("GPU") == pytest.approx(shares[deployment])


def test_audio_missing_from_the_store_is_a_clear_error(app: VpaApp) -> None:
    handle: Any = serve.get_deployment_handle("Transcriber", app_name="vpa").options(stream=True)
    key = job_key(uuid.uuid4(), "audio.wav")
    items = list(handle.transcribe.remote(key, TranscribeOptions(language="en")))
    assert items[-1]["type"] == "error", items
    assert "missing from the artifact store" in items[-1]["error"]["message"]
