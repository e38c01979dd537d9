"""vpa's figures out of Ray's Prometheus endpoints, as one Prometheus text exposition.

Ray's metrics agent on each node serves every figure its processes recorded, vpa's
(actors/metrics.py) with Ray's prefix (`ray_vpa_jobs_total`) and with Ray's labels
(`WorkerId`, `NodeAddress`, `SessionName`, `Component`, `Version`, `otel_scope_*`): one
series per process. `relay(texts)` keeps only the families of `SPECS`, drops the prefix
and every label a spec does not declare, and sums what is left over processes and nodes:
counters and histograms add up, and so do the gauges (each process sets its own share:
the sockets of one Ingress replica; the queue gauges have one writer, the coordinator).
Every family of `SPECS` is written, with no samples until something was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from actors.metrics import SPECS, MetricSpec

RAY_PREFIX = "ray_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BY_NAME = {spec.name: spec for spec in SPECS}
_WANTED = tuple(RAY_PREFIX + spec.name for spec in SPECS)

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def vpa_lines(text: str) -> str:
    """The lines of `text` (a whole node's exposition) that belong to vpa's families:
    parsing only these keeps a scrape cheap beside Ray's hundreds of families."""
    kept = []
    for line in text.splitlines():
        bare = line[7:] if line.startswith(("# HELP ", "# TYPE ")) else line
        if bare.startswith(_WANTED):
            kept.append(line)
    return "\n".join(kept) + "\n"


def _own_labels(spec: MetricSpec, labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    keep = set(spec.labels) | ({"le"} if spec.kind == "histogram" else set())
    return tuple(sorted((k, v) for k, v in labels.items() if k in keep))


def merge(texts: Iterable[str]) -> dict[str, dict[SampleKey, float]]:
    """Per family of `SPECS`: each sample (name without Ray's prefix, vpa's labels) summed
    over every series of every text."""
    totals: dict[str, dict[SampleKey, float]] = {spec.name: {} for spec in SPECS}
    for text in texts:
        for family in text_string_to_metric_families(vpa_lines(text)):
            spec = _BY_NAME.get(family.name.removeprefix(RAY_PREFIX))
            if spec is None:  # a prefix match of another name
                continue
            samples = totals[spec.name]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name.removeprefix(RAY_PREFIX), _own_labels(spec, sample.labels))
                samples[key] = samples.get(key, 0.0) + sample.value
    return totals


class _Merged:
    """A prometheus_client collector over merged samples, for its text writer."""

    def __init__(self, totals: dict[str, dict[SampleKey, float]]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        for spec in SPECS:
            family = Metric(spec.name, spec.help, spec.kind)
            for (name, labels), value in sorted(self._totals[spec.name].items(), key=_order):
                family.add_sample(name, dict(labels), value)
            yield family


def _order(item: tuple[SampleKey, float]) -> Any:
    """Samples grouped by label set, a histogram's buckets by bound, then _count, _sum."""
    (name, labels), _ = item
    le = dict(labels).get("le")
    rest = tuple((k, v) for k, v in labels if k != "le")
    return rest, le is None, name.endswith("_sum"), _bound(le)


def _bound(le: str | None) -> float:
    return float("inf") if le in (None, "+Inf") else float(le)


def relay(texts: Iterable[str]) -> bytes:
    """The exposition of vpa's families merged from `texts` (each a node's exposition)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(merge(texts)))
    return generate_latest(registry)
