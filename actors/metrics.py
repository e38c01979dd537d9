"""vpa's own figures, declared once and recorded through Ray's metrics (`ray.util.metrics`).

Each process that records one (the coordinator actor, the Ingress and Transcriber
replicas) hands it to its node's Ray metrics agent every `metrics_report_interval_ms`
(10 s by default), which serves it in Prometheus' text format on the node's metrics export
port, beside Ray's and Ray Serve's own, with Ray's prefix: `vpa_jobs` is
`ray_vpa_jobs_total` there. `GET /metrics` on the API relays these families from every
node, summed over processes and nodes and without Ray's labels, under the names below
(deployments/metrics_relay.py). No label ever holds a job id, an API key or an owner.

Recording never raises into the caller: a figure that cannot be recorded is logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger("vpa.metrics")

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One family: its name (a counter's without `_total`), kind, help and label names."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds, seconds or ratios

    @property
    def exposed(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family (what queries name)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.name,)


DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

# status: submitted (a new job stored), completed, failed, cancelled (each ending of a job)
JOBS = MetricSpec("vpa_jobs", "counter", "Jobs submitted and ended", ("status", "job_type"))
QUEUE_DEPTH = MetricSpec(
    "vpa_queue_depth", "gauge", "Jobs queued, waiting for a slot or a retry's backoff"
)
RUNNING_JOBS = MetricSpec("vpa_running_jobs", "gauge", "Jobs running now")
STAGE_DURATION = MetricSpec(
    "vpa_stage_duration_seconds",
    "histogram",
    "Seconds a completed stage took",
    ("stage",),
    DURATION_BUCKETS,
)
TRANSCRIPTION_RTF = MetricSpec(
    "vpa_transcription_realtime_factor",
    "histogram",
    "Transcription time over the audio's duration (below 1: faster than real time)",
    (),
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
CLIP_CUT = MetricSpec(
    "vpa_clip_cut_seconds",
    "histogram",
    "Seconds cutting one clip took, by cutting method (copy, smart, reencode)",
    ("method",),
    (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
WEBSOCKETS = MetricSpec(
    "vpa_websocket_connections",
    "gauge",
    "Open WebSocket connections, by kind (job, broadcast, health)",
    ("kind",),
)
WEBHOOK_DELIVERIES = MetricSpec(
    "vpa_webhook_deliveries",
    "counter",
    "Webhook delivery attempts, by outcome (delivered, failed: tried again later, gave_up)",
    ("outcome",),
)

SPECS: tuple[MetricSpec, ...] = (
    JOBS,
    QUEUE_DEPTH,
    RUNNING_JOBS,
    STAGE_DURATION,
    TRANSCRIPTION_RTF,
    CLIP_CUT,
    WEBSOCKETS,
    WEBHOOK_DELIVERIES,
)


@functools.cache
def _instrument(spec: MetricSpec) -> Any:
    """This process's Ray instrument for `spec`, made on first use."""
    from ray.util import metrics

    if spec.kind == "counter":
        return metrics.Counter(spec.name, spec.help, tag_keys=spec.labels)
    if spec.kind == "gauge":
        return metrics.Gauge(spec.name, spec.help, tag_keys=spec.labels)
    return metrics.Histogram(
        spec.name, spec.help, boundaries=list(spec.buckets), tag_keys=spec.labels
    )


def _record(spec: MetricSpec, value: float, labels: Mapping[str, str] | None = None) -> None:
    tags = dict(labels) if labels else None
    try:
        instrument = _instrument(spec)
        if spec.kind == "counter":
            instrument.inc(value, tags=tags)
        elif spec.kind == "gauge":
            instrument.set(value, tags=tags)
        else:
            instrument.observe(value, tags=tags)
    except Exception:
        log.warning("recording %s failed", spec.name, exc_info=True)


def job_counted(status: str, job_type: str) -> None:
    """A job was submitted (`status="submitted"`) or ended (completed, failed, cancelled)."""
    _record(JOBS, 1, {"status": status, "job_type": job_type})


def queue_sizes(queued: int, running: int) -> None:
    _record(QUEUE_DEPTH, queued)
    _record(RUNNING_JOBS, running)


def stage_finished(stage: str, seconds: float) -> None:
    _record(STAGE_DURATION, max(seconds, 0.0), {"stage": stage})


def transcribed(processing_s: float, audio_s: float | None) -> None:
    """One transcription: its real-time factor, if the audio's duration is known."""
    if audio_s is not None and audio_s > 0:
        _record(TRANSCRIPTION_RTF, max(processing_s, 0.0) / audio_s)


def clip_cut(method: str, seconds: float) -> None:
    _record(CLIP_CUT, max(seconds, 0.0), {"method": method})


def websocket_connections(by_kind: Mapping[str, int]) -> None:
    """This replica's open sockets, e.g. `{"job": 3, "broadcast": 1, "health": 0}`."""
    for kind, count in by_kind.items():
        _record(WEBSOCKETS, count, {"kind": kind})


def webhook_attempt(outcome: str) -> None:
    """One delivery attempt: delivered, failed (tried again later) or gave_up."""
    _record(WEBHOOK_DELIVERIES, 1, {"outcome": outcome})


def stage_figures(figures: Mapping[str, list[Any]]) -> None:
    """What a stage measured (`StageOutput.figures`): `clip_cut` as [method, seconds] pairs."""
    for method, seconds in figures.get("clip_cut", []):
        clip_cut(str(method), float(seconds))
