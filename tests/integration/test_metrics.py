"""vpa's metrics on the real service (issue 12, item 4): jobs that complete and fail, their
stages and webhook, and an open WebSocket, counted through Ray's metrics and read back at
`GET /metrics` (parsed by prometheus_client's parser); the Grafana dashboard names only
figures that /metrics exposes. Counters are cumulative over the test session's Ray
instance, so each check compares with a scrape taken before."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.integration.conftest import ROOT, VpaApp
from tests.integration.scrape import Families, poll, scrape, value
from tests.unit.test_webhooks import SECRET
from tests.webhook_receiver import receiver

DASHBOARD = ROOT / "deploy" / "grafana" / "vpa-dashboard.json"
JOBS = "vpa_jobs_total"
STAGES = "vpa_stage_duration_seconds_count"
WEBHOOKS = "vpa_webhook_deliveries_total"


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(webhook_secret=SECRET)


def _figures(families: Families) -> dict[str, float]:
    kind = "audio_extraction"
    return {
        "submitted": value(families, JOBS, status="submitted", job_type=kind),
        "completed": value(families, JOBS, status="completed", job_type=kind),
        "failed": value(families, JOBS, status="failed", job_type=kind),
        "fetch": value(families, STAGES, stage="fetch"),
        "audio": value(families, STAGES, stage="audio"),
        "delivered": value(families, WEBHOOKS, outcome="delivered"),
    }


def test_jobs_stages_and_webhooks_are_counted(app: VpaApp, sample_media: Any) -> None:
    before = _figures(scrape(app))
    with receiver([204]) as hook:
        ok = app.submit(sample_media.clip, webhook_url=hook.url)["id"]
        bad = app.submit(sample_media.not_media)["id"]
        assert app.wait(ok)["status"] == "completed"
        assert app.wait(bad)["status"] == "failed"
        hook.wait_for(1)
    # the failed job's fetch stage failed: only completed stages are timed
    grown = {"submitted": 2, "completed": 1, "failed": 1, "fetch": 1, "audio": 1, "delivered": 1}
    expected = {name: before[name] + grown.get(name, 0) for name in before}
    after = poll(app, lambda f: _figures(f) == expected)
    text = app.client.get("/metrics").text
    assert ok not in text and bad not in text and "WorkerId" not in text  # no ids, no Ray labels
    assert value(after, "vpa_stage_duration_seconds_sum", stage="audio") > 0
    buckets = [s for s in after["vpa_stage_duration_seconds"].samples if s.name.endswith("_bucket")]
    assert {s.labels["stage"] for s in buckets} >= {"fetch", "audio"}
    assert all(set(s.labels) == {"stage", "le"} for s in buckets)  # none of Ray's labels
    # set by the coordinator
    poll(app, lambda f: bool(f["vpa_queue_depth"].samples and f["vpa_running_jobs"].samples))


def test_open_websockets_are_counted(app: VpaApp) -> None:
    with connect(app.ws_url + "/ws/jobs/broadcast", open_timeout=30, proxy=None) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "connected"
        poll(app, lambda f: value(f, "vpa_websocket_connections", kind="broadcast") >= 1)


def dashboard_series(dashboard: dict[str, Any]) -> set[str]:
    """Every metric name the dashboard's panel queries name."""
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs
    return set(re.findall(r"\bvpa_[a-z_]+\b", " ".join(exprs)))


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def test_the_grafana_dashboard_names_only_exposed_figures(app: VpaApp) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    named = dashboard_series(dashboard)
    families = scrape(app)  # every family, with samples or not yet
    series = {f.name: {f.name + suffix for suffix in SUFFIXES[f.type]} for f in families.values()}
    exposed = set().union(*series.values())
    assert named <= exposed, named - exposed
    assert all(names & named for names in series.values()), "a figure without a panel"
    assert any(v.get("type") == "datasource" for v in dashboard["templating"]["list"])
