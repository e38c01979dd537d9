"""serve_config.yaml is the deployable truth.

- Deployed from the file itself, the way `serve run serve_config.yaml` does it (ray/serve/
  scripts.py `run`: parse the YAML into Serve's `ServeDeploySchema`, then `serve_start` and
  `deploy_apps`): the Serve controller imports `serve_app:build_app` in a build task, calls
  it with the file's `args` and applies the file's `deployments:` options over the code.
  Only `args` (temporary storage) and `http_options` (the session's port) are replaced.
  An audio_extraction job then runs through the HTTP API.
- Its `deployments:` block (and the RayService's) equals what the real `serve build` CLI
  writes for the settings the file is deployed with.
- Its HTTP port is the settings' default API_PORT, the one `make serve` listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ray.serve._private import api as serve_api
from ray.serve._private.client import ServeControllerClient
from ray.serve.config import gRPCOptions
from ray.serve.schema import ServeDeploySchema, ServeInstanceDetails

from config.settings import Settings
from tests.integration.conftest import NAMESPACE, ROOT, VpaApp, kill_vpa_actors

CONFIG = ROOT / "serve_config.yaml"
RAYSERVICE = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
SERVE_CLI = Path(sys.executable).with_name("serve")
# `serve build` takes an Application, not a builder: deploy/built_app.py is build_app().
BUILD_TARGET = ["built_app:app", "--app-dir", str(ROOT / "deploy")]
# Settings that name files: the builds in this module keep them in a temporary directory.
PATH_SETTINGS = ("database_url", "artifact_dir", "scratch_dir", "log_file")


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def rayservice_serve_config() -> dict[str, Any]:
    """The Serve config inside the RayService (`serveConfigV2` is a YAML string)."""
    config = yaml.safe_load(_read_yaml(RAYSERVICE)["spec"]["serveConfigV2"])
    assert isinstance(config, dict)
    return config


def rayservice_settings_env() -> dict[str, str]:
    """The settings the RayService's pods set as plain values (the Secret's are not needed
    to build: the build below uses temporary storage)."""
    head = _read_yaml(RAYSERVICE)["spec"]["rayClusterConfig"]["headGroupSpec"]
    env = head["template"]["spec"]["containers"][0].get("env", [])
    return {e["name"]: str(e["value"]) for e in env if "value" in e}


@dataclass
class FileApp:
    app: VpaApp
    config: ServeDeploySchema
    client: ServeControllerClient
    tmp: Path


def _wait_running(client: ServeControllerClient, name: str) -> ServeInstanceDetails:
    deadline = time.monotonic() + 240
    while True:
        details = ServeInstanceDetails(**client.get_serve_details())
        app = details.applications.get(name)
        status = str(app.status.value) if app else "NOT_STARTED"
        if status == "RUNNING":
            return details
        if status == "DEPLOY_FAILED" or time.monotonic() > deadline:
            raise AssertionError(f"app {name} from serve_config.yaml is {status}: {app}")
        time.sleep(0.5)


def _wait_healthy(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("vpa deployed from serve_config.yaml did not become healthy")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def from_file(
    ray_cluster: None, http_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FileApp]:
    tmp = tmp_path_factory.mktemp("serve-config")
    args: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'vpa.db'}",
        "artifact_dir": str(tmp / "artifacts"),
        "scratch_dir": str(tmp / "scratch"),
        "log_file": str(tmp / "vpa.log"),
        "allow_private_urls": True,
        "ray_namespace": NAMESPACE,
        "environment": "test",
    }
    raw = _read_yaml(CONFIG)
    raw["http_options"] = {**raw["http_options"], "host": "127.0.0.1", "port": http_port}
    (application,) = raw["applications"]
    application["args"] = {**(application.get("args") or {}), **args}
    config = ServeDeploySchema.model_validate(raw)

    kill_vpa_actors()  # an earlier module's app and its coordinator and hub
    # What `serve run serve_config.yaml` does once Ray is up: Serve is already running on
    # the session's port, so serve_start returns its client.
    client = serve_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
        grpc_options=gRPCOptions(**config.grpc_options.model_dump()),
    )
    try:
        client.deploy_apps(config)
        _wait_running(client, "vpa")
        base = f"http://127.0.0.1:{http_port}"
        http = httpx.Client(base_url=base, timeout=60.0)
        _wait_healthy(http)
        settings = Settings(_env_file=None, **args)
        yield FileApp(VpaApp(base_url=base, settings=settings, client=http), config, client, tmp)
        http.close()
    finally:
        kill_vpa_actors()  # serve.delete("vpa"), then the detached coordinator and hub


def _contains(expected: Any, actual: Any) -> bool:
    """`actual` has every value `expected` sets (nested dicts compared key by key)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)


def test_the_file_deploys_with_its_options_and_runs_a_job(
    from_file: FileApp, sample_media: Any
) -> None:
    details = ServeInstanceDetails(**from_file.client.get_serve_details())
    deployed = details.applications["vpa"]
    (written,) = from_file.config.applications
    assert deployed.route_prefix == written.route_prefix == "/"
    assert deployed.deployed_app_config is not None
    assert deployed.deployed_app_config.import_path == "serve_app:build_app"
    assert deployed.deployed_app_config.args == written.args
    # Every option the file sets is what Serve runs.
    assert set(deployed.deployments) == {d.name for d in written.deployments}
    for options in written.model_dump(exclude_unset=True)["deployments"]:
        running = deployed.deployments[options["name"]].deployment_config.model_dump(
            exclude_unset=True
        )
        assert _contains(options, running), (options, running)
        assert str(deployed.deployments[options["name"]].status.value) == "HEALTHY"

    app = from_file.app
    job = app.submit(sample_media.clip, options={"audio_format": "wav", "audio_quality": "low"})
    done = app.wait(job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100.0
    arts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    audio = next(a for a in arts if a["kind"] == "audio")
    assert audio["format"] == "wav"
    r = app.client.get(audio["download_url"])
    assert r.status_code == 200
    assert len(r.content) == audio["size_bytes"] > 0
    # The file's args reached the build: the job lives in the temporary database and
    # artifact directory, not in ./data.
    assert (from_file.tmp / "vpa.db").is_file()
    assert any(p.is_file() for p in (from_file.tmp / "artifacts").rglob("*"))


def _serve_build(tmp: Path, env_settings: dict[str, str]) -> dict[str, Any]:
    """Run the real `serve build` CLI for these settings (and no others from this
    environment), files under `tmp`."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(env_settings)
    env.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        DATABASE_URL=f"sqlite:///{tmp / 'vpa.db'}",
        ARTIFACT_DIR=str(tmp / "artifacts"),
        SCRATCH_DIR=str(tmp / "scratch"),
        LOG_FILE=str(tmp / "vpa.log"),
    )
    out = tmp / "built.yaml"
    proc = subprocess.run(
        [str(SERVE_CLI), "build", *BUILD_TARGET, "-o", str(out)],
        cwd=tmp,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _read_yaml(out)


def _assert_same_application(committed: dict[str, Any], built: dict[str, Any]) -> None:
    for key in ("proxy_location", "grpc_options", "logging_config"):
        assert committed[key] == built[key], key
    assert committed["http_options"]["host"] == built["http_options"]["host"] == "0.0.0.0"
    (ours,) = committed["applications"]
    (theirs,) = built["applications"]
    assert ours["import_path"] == "serve_app:build_app"  # what built_app:app calls
    assert ours["route_prefix"] == theirs["route_prefix"]
    assert ours["deployments"] == theirs["deployments"]


def test_serve_config_is_what_serve_build_writes(tmp_path: Path) -> None:
    _assert_same_application(_read_yaml(CONFIG), _serve_build(tmp_path, {}))


def test_rayservice_is_what_serve_build_writes_for_its_settings(tmp_path: Path) -> None:
    env = rayservice_settings_env()
    assert env["ENABLE_GPU"] == "true"
    built = _serve_build(tmp_path, {k: v for k, v in env.items() if k.lower() not in PATH_SETTINGS})
    _assert_same_application(rayservice_serve_config(), built)


def test_http_port_is_the_settings_default() -> None:
    default_port = Settings.model_fields["api_port"].default
    for config in (_read_yaml(CONFIG), rayservice_serve_config()):
        assert config["http_options"] == {"host": "0.0.0.0", "port": default_port}
