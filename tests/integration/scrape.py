"""`GET /metrics` for the integration tests: scraped and parsed with prometheus_client's
own parser, and polled until a figure arrives (Ray's processes report their figures to
the metrics agent every `metrics_report_interval_ms`, so a figure shows a moment after it
was recorded)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from deployments.routes.metrics import metric_endpoints
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


Series = dict[frozenset[tuple[str, str]], float]


def ray_series(sample: str, **labels: str) -> Series:
    """`sample` as Ray's own endpoints have it, one value per process (Ray's labels kept:
    WorkerId, ...), before the relay sums them. A process that ended drops out of these
    after a while, which lowers /metrics' sums; a figure one job added is
    `growth(before, after)` of two of these, whatever process ended in between."""
    series: Series = {}
    for url in metric_endpoints():
        text = httpx.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == f"ray_{sample}" and all(
                    s.labels.get(k) == v for k, v in labels.items()
                ):
                    series[frozenset(s.labels.items())] = s.value
    return series


def growth(before: Series, after: Series) -> float:
    """How much the series that are in `after` grew since `before` (new ones from 0)."""
    return sum(v - before.get(key, 0.0) for key, v in after.items())


def poll_growth(
    sample: str, before: Series, expected: float, timeout_s: float = 90.0, **labels: str
) -> None:
    """Until `sample` has grown by at least `expected` (Ray's endpoint may leave a process's
    series out of one scrape, so a `before` can miss one and count it again as new)."""
    deadline = time.monotonic() + timeout_s
    while (grown := growth(before, ray_series(sample, **labels))) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{sample} {labels} grew by {grown}, not {expected}")
        time.sleep(0.5)
