"""deploy/: the KubeRay RayService carries serve_config.yaml's application, valid for Ray
Serve's own schema, with GPU shares, a GPU worker group and the Secret on every container;
the Dockerfile installs with `make setup`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from ray.serve.schema import ServeDeploySchema

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRET_KEYS = {
    "DATABASE_URL",
    "ARTIFACT_URL",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "ADMIN_API_KEY",
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _rayservice() -> dict[str, Any]:
    return _load(DEPLOY / "kuberay" / "rayservice.yaml")


def _serve_config_v2() -> dict[str, Any]:
    raw = _rayservice()["spec"]["serveConfigV2"]
    assert isinstance(raw, str)  # KubeRay takes the Serve config as a YAML string
    config = yaml.safe_load(raw)
    assert isinstance(config, dict)
    return config


def _groups() -> list[dict[str, Any]]:
    cluster = _rayservice()["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def _containers() -> list[dict[str, Any]]:
    return [c for group in _groups() for c in group["template"]["spec"]["containers"]]


def _without_gpu_shares(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for deployment in deployments:
        actor = {k: v for k, v in deployment["ray_actor_options"].items() if k != "num_gpus"}
        out.append({**deployment, "ray_actor_options": actor})
    return out


def test_serve_config_v2_is_a_valid_serve_config() -> None:
    service = _rayservice()
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    config = ServeDeploySchema.model_validate(_serve_config_v2())
    assert config.http_options.host == "0.0.0.0"
    assert config.http_options.port == 8000
    ServeDeploySchema.model_validate(_load(ROOT / "serve_config.yaml"))


def test_its_application_is_serve_config_yaml_with_gpu_shares() -> None:
    (ours,) = _serve_config_v2()["applications"]
    (reference,) = _load(ROOT / "serve_config.yaml")["applications"]
    for key in ("name", "import_path", "route_prefix"):
        assert ours[key] == reference[key], key
    assert ours["runtime_env"]["env_vars"] == reference["runtime_env"]["env_vars"]
    assert _without_gpu_shares(ours["deployments"]) == reference["deployments"]
    # ENABLE_GPU=true in the pods: the model deployments carry the default GPU shares.
    defaults = Settings.model_fields
    gpus = {d["name"]: d["ray_actor_options"].get("num_gpus") for d in ours["deployments"]}
    assert gpus == {
        "Transcriber": defaults["transcriber_num_gpus"].default,
        "Analyzer": defaults["analyzer_num_gpus"].default,
        "Ingress": None,
    }


def test_autoscaling_and_a_gpu_worker_group() -> None:
    cluster = _rayservice()["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    workers = cluster["workerGroupSpecs"]
    for group in workers:
        assert 0 <= group["minReplicas"] <= group["maxReplicas"], group["groupName"]
    gpu_groups = [
        g
        for g in workers
        if any(
            c["resources"]["limits"].get("nvidia.com/gpu") == 1
            for c in g["template"]["spec"]["containers"]
        )
    ]
    assert len(gpu_groups) == 1
    assert gpu_groups[0]["rayStartParams"]["num-gpus"] == "1"
    cpu_only = [g for g in workers if g not in gpu_groups]
    assert [g["groupName"] for g in cpu_only] == ["cpu"]


def test_every_container_has_the_image_the_secret_and_the_settings() -> None:
    secret = _load(DEPLOY / "kuberay" / "secret.example.yaml")
    assert secret["kind"] == "Secret"
    assert set(secret["stringData"]) == SECRET_KEYS | {"AWS_REGION"}
    assert {k.lower() for k in secret["stringData"]} <= set(Settings.model_fields)
    name = secret["metadata"]["name"]
    containers = _containers()
    assert len(containers) == 3  # head, cpu, gpu
    # One environment everywhere: the app is built on whichever node Serve picks.
    for container in containers[1:]:
        assert container.get("env") == containers[0].get("env")
        assert container.get("envFrom") == containers[0].get("envFrom")
    for container in containers:
        assert container["image"] == "vpa:latest"
        # The whole Secret, SECRET_KEYS included, as environment variables.
        assert container["envFrom"] == [{"secretRef": {"name": name}}], container["name"]
        values = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert values["ENABLE_GPU"] == "true"
        assert values["MAX_CONCURRENT_JOBS"] == "auto"
        settings = Settings.model_validate({k.lower(): v for k, v in values.items()})
        assert settings.enable_gpu is True
        assert settings.max_concurrent_jobs == "auto"


def test_dockerfile_installs_with_make_setup() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert [line for line in lines if line.startswith("FROM")] == ["FROM python:3.11-slim"]
    assert "RUN make setup" in lines
    assert "RUN apt-get update \\" in lines
    # make for `make setup`; wget for KubeRay's probes.
    install = next(line for line in lines if "apt-get install" in line)
    assert install == "&& apt-get install -y --no-install-recommends make wget \\"
    assert "STOPSIGNAL SIGTERM" in lines
    assert re.search(r"API_HOST=0\.0\.0\.0", text)
    cmd = next(line for line in lines if line.startswith("CMD"))
    assert cmd == 'CMD ["/app/.venv/bin/python", "main.py"]'  # exec form: SIGTERM reaches it
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "data", ".git", ".env"} <= ignored
