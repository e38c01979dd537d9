"""`serve_app.build_app()` as an Application, for `serve build`.

`serve build` imports an Application, not an application builder, so `serve build
serve_app:build_app` is refused ("Expected 'serve_app:build_app' to be an Application").
`built_app:app` is the application for the settings in the environment (and .env), built
when `serve build` reads it, never at import. From the repository root:

    PYTHONPATH=. .venv/bin/serve build built_app:app --app-dir deploy -o /tmp/built.yaml

writes the `deployments:` block that serve_config.yaml (default settings) and
deploy/kuberay/rayservice.yaml (its container settings: ENABLE_GPU=true) carry. Building
opens the database and artifact store those settings name (./data by default), as
`serve run` does.
"""

from __future__ import annotations

from typing import Any

from serve_app import build_app


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
