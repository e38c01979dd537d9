"""One GPU, both model deployments: with ENABLE_GPU and the default GPU shares (0.4 for a
Transcriber replica, 0.1 for an Analyzer replica), a Ray instance with a single GPU places
both deployments and completes a job. The GPU is declared, not real: the models run on the
CPU, as they do on a GPU-less machine. MAX_CONCURRENT_JOBS=auto takes the cluster's CPUs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve

from tests.cluster.conftest import start_ray
from tests.integration.conftest import VpaApp, close_clients, deploy, make_settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VpaApp]:
    port = start_ray("serve", num_cpus=4, num_gpus=1)  # Serve's Python proxy: INGRESS_PROXY=serve
    try:
        tmp: Path = tmp_path_factory.mktemp("one-gpu")
        settings = make_settings(tmp, enable_gpu=True, max_concurrent_jobs="auto")
        yield deploy(port, settings, with_models=True)
    finally:
        close_clients()
        serve.shutdown()
        ray.shutdown()


def _gpu_of(deployment: str) -> list[float]:
    handle: Any = serve.get_deployment_handle(deployment, app_name="vpa")
    return [float(handle.info.remote().result()["assigned_resources"].get("GPU", 0.0))]


def test_both_model_deployments_share_the_one_gpu(app: VpaApp, speech_video: str) -> None:
    status = serve.status().applications["vpa"].deployments
    assert str(status["Transcriber"].status.value) == "HEALTHY"
    assert str(status["Analyzer"].status.value) == "HEALTHY"
    assert _gpu_of("Transcriber") == [pytest.approx(0.4)]
    assert _gpu_of("Analyzer") == [pytest.approx(0.1)]
    assert ray.cluster_resources()["GPU"] == 1.0
    assert ray.available_resources().get("GPU", 0.0) == pytest.approx(0.5)

    # MAX_CONCURRENT_JOBS=auto: one job per CPU of the cluster (ray.init(num_cpus=4))
    limit = app.client.get("/api/v1/jobs/queue/status").json()["max_concurrent_jobs"]
    assert limit == 4

    job = app.submit(speech_video, job_type="analysis")
    done = app.wait(job["id"], timeout_s=240)
    assert done["status"] == "completed", done
    assert done["transcript"].strip()
    assert done["analysis_results"]["keywords"]
