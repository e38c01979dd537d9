"""Cluster benchmark: full_processing on a simulated 3-node Ray cluster, S3 store beside a
local store.

Run: `PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/cluster.py [--minutes 2]
[--size 640x360] [--runs 2] [--smoke]`. A script, never a test; it prints a markdown report.
`--smoke`, to check that it runs: one job per backend of a 15 s 320x180 video (one 8 s
clip), no warm-up job.

The cluster (`ray.cluster_utils.Cluster`, all on this machine): a head (2 CPUs), worker A
(2 CPUs) and a GPU worker (2 CPUs, one declared GPU: the models run on the CPU). Stages are
spread as in tests/cluster/test_multinode.py: fetch on worker A, clips on the GPU worker,
subtitles on the head (`STAGE_RESOURCES`), the model replicas on the GPU worker
(`ENABLE_GPU=true`); audio and the model stages' tasks go where Ray puts them. The
database is SQLite (one machine); each node has its own scratch directory.

For each backend, in the same run, on the same cluster: the app deployed with that store,
one short warm-up job, then `--runs` full_processing jobs of a `--minutes` video (testsrc2 +
speech, made once and cached by bench/media.py), one after the other. Per job: seconds
from the POST to completed, and the bytes the stages moved from and into the artifact
store (each `stage_completed` event's `bytes_in` / `bytes_out`; the transcribe stage's
`bytes_in` is what the Transcriber replica downloaded). With the local store, inputs are
symbolic links and outputs renames: nothing crosses a network, which on a real cluster
would need a filesystem every node mounts. With S3 (SeaweedFS on loopback, started here),
every stage input is downloaded to the node running the stage and every output uploaded.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/cluster.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx

from bench.common import ROOT, free_port, log, tree_text
from bench.media import make_video, media_server
from bench.service import WARM_UP_MINUTES, WARM_UP_OPTIONS, poll_job, post_job
from bench.stats import mib

NAMESPACE = "vpa-bench-cluster"
JOB_TYPE = "full_processing"
OPTIONS: dict[str, Any] = {"clip_duration": 20, "max_clips": 3, "min_confidence": 0.0}
SMOKE_OPTIONS: dict[str, Any] = {"clip_duration": 8, "max_clips": 1, "min_confidence": 0.0}
STAGE_RESOURCES = {"fetch": {"worker_a": 1}, "clips": {"gpu_node": 1}, "subtitles": {"head": 1}}


def start_cluster() -> tuple[Any, int]:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from tests.integration.conftest import use_ingress_proxy

    use_ingress_proxy("haproxy")  # the nodes' processes inherit Serve's variables
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"head": 10}}
    )
    cluster.add_node(num_cpus=2, resources={"worker_a": 10})
    cluster.add_node(num_cpus=2, num_gpus=1, resources={"gpu_node": 10})
    cluster.wait_for_nodes()
    ray.init(
        address=cluster.address,
        namespace=NAMESPACE,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        logging_level=logging.WARNING,
    )
    port = free_port()
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    return cluster, port


def deploy(port: int, tmp: Path, **store: Any) -> httpx.Client:
    from tests.integration.conftest import deploy as deploy_app
    from tests.integration.conftest import make_settings

    settings = make_settings(
        tmp,
        ray_namespace=NAMESPACE,
        enable_gpu=True,
        max_concurrent_jobs=1,
        stage_resources=STAGE_RESOURCES,
        log_level="WARNING",
        **store,
    )
    return deploy_app(port, settings, with_models=True).client


def run_job(client: httpx.Client, url: str, options: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    body = {"youtube_url": url, "job_type": JOB_TYPE, "options": options}
    job_id = post_job(client, body)
    job = poll_job(client, job_id, timeout_s=3600)
    wall = time.perf_counter() - t0
    if job["status"] != "completed":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error_message')}")
    events = client.get(f"/api/v1/jobs/{job_id}/events").json()
    done = [e for e in events if e["type"] == "stage_completed"]
    artifacts = client.get(f"/api/v1/jobs/{job_id}/artifacts").json()
    return {
        "wall_s": wall,
        "stored": sum(int(a["size_bytes"] or 0) for a in artifacts),
        "bytes_in": sum(int(e["data"].get("bytes_in") or 0) for e in done),
        "bytes_out": sum(int(e["data"].get("bytes_out") or 0) for e in done),
        "nodes": len({e["data"].get("node") for e in done}),
        "stages": {e["stage"]: e["data"] for e in done},
    }


def measure(
    label: str, client: httpx.Client, url: str, warm_url: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    if warm_url is not None:
        log(f"{label}: warm-up job ...")
        run_job(client, warm_url, WARM_UP_OPTIONS)
    results = []
    for n in range(args.runs):
        result = run_job(client, url, args.options)
        log(f"{label}: run {n + 1}: {result['wall_s']:.2f} s, {result['nodes']} nodes")
        results.append(result)
    return {
        "wall_s": statistics.median(r["wall_s"] for r in results),
        "bytes_in": statistics.median(r["bytes_in"] for r in results),
        "bytes_out": statistics.median(r["bytes_out"] for r in results),
        "stored": statistics.median(r["stored"] for r in results),
        "nodes": min(r["nodes"] for r in results),
        "stages": results[-1]["stages"],
    }


def report(args: argparse.Namespace, local: dict[str, Any], s3: dict[str, Any], video: Path) -> str:
    ratio = s3["wall_s"] / local["wall_s"]
    lines = [
        f"### Cluster (`bench/cluster.py`): {JOB_TYPE} of a {args.minutes:g}-minute "
        f"{args.size} video on 3 simulated nodes",
        "",
        f"Video {video.stat().st_size / 2**20:.0f} MiB; options {args.options}; median of "
        f"{args.runs} runs per backend"
        + ("" if args.smoke else ", each after a warm-up job")
        + f"; {tree_text()}.",
        "",
        "| figure | local store | S3 store (SeaweedFS) | S3 ÷ local |",
        "|---|---|---|---|",
        f"| seconds per job | {local['wall_s']:.2f} s | {s3['wall_s']:.2f} s | {ratio:.2f}x |",
        f"| bytes from the store to the nodes | {mib(local['bytes_in'])} | "
        f"{mib(s3['bytes_in'])} | |",
        f"| bytes from the nodes to the store | {mib(local['bytes_out'])} | "
        f"{mib(s3['bytes_out'])} | |",
        f"| artifacts the job stored | {mib(local['stored'])} | {mib(s3['stored'])} | |",
        f"| nodes the stages ran on | {local['nodes']} | {s3['nodes']} | |",
        "",
        "Per stage on S3 (bytes in / out, seconds):",
        "",
        "| stage | in | out | seconds |",
        "|---|---|---|---|",
    ]
    for stage, data in s3["stages"].items():
        lines.append(
            f"| {stage} | {mib(data.get('bytes_in') or 0)} | {mib(data.get('bytes_out') or 0)} "
            f"| {data.get('elapsed_s', 0):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="one job per backend, 15 s video")
    args = parser.parse_args(argv)
    args.options = OPTIONS
    if args.smoke:
        args.minutes, args.size, args.runs, args.options = 0.25, "320x180", 1, SMOKE_OPTIONS

    import ray
    from ray import serve

    from tests.fixtures.s3 import start_s3_server

    video = make_video(args.minutes, args.size)
    warm = None if args.smoke else make_video(WARM_UP_MINUTES, args.size)
    with tempfile.TemporaryDirectory(prefix="vpa-bench-cluster-") as tmp_dir:
        tmp = Path(tmp_dir)
        with media_server(video.parent) as base, start_s3_server(tmp / "s3") as s3:
            url = f"{base}/{video.name}"
            warm_url = None if warm is None else f"{base}/{warm.name}"
            cluster, port = start_cluster()
            try:
                client = deploy(port, tmp / "local")
                local = measure("local store", client, url, warm_url, args)
                client = deploy(
                    port,
                    tmp / "s3-app",
                    artifact_url=s3.artifact_url(f"bench-{uuid.uuid4().hex[:8]}"),
                    s3_endpoint_url=s3.endpoint_url,
                    aws_access_key_id=s3.access_key_id,
                    aws_secret_access_key=s3.secret_access_key,
                    aws_region=s3.region,
                )
                remote = measure("S3 store", client, url, warm_url, args)
            finally:
                serve.shutdown()
                ray.shutdown()
                cluster.shutdown()
    print(report(args, local, remote, video))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
