"""`GET /metrics` for the integration tests: scraped and parsed with prometheus_client's
own parser, and polled until a figure arrives (Ray's processes report their figures to
the metrics agent every `metrics_report_interval_ms`, so a figure shows a moment after it
was recorded)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import VpaApp

Families = dict[str, Metric]


def scrape(app: VpaApp, headers: dict[str, str] | None = None) -> Families:
    r = app.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return {family.name: family for family in text_string_to_metric_families(r.text)}


def value(families: Families, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` (0 if none)."""
    return sum(
        s.value
        for family in families.values()
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def poll(app: VpaApp, until: Callable[[Families], bool], timeout_s: float = 90.0) -> Families:
    """Scrape until `until(families)` holds; the last scrape is in the failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        families = scrape(app)
        if until(families):
            return families
        if time.monotonic() > deadline:
            shown = [(s.name, s.labels, s.value) for f in families.values() for s in f.samples]
            raise AssertionError(f"/metrics never showed it: {shown}")
        time.sleep(0.5)
