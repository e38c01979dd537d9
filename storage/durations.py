"""Percentiles and duration summaries for the statistics."""

from __future__ import annotations

import math

from storage.schemas import DurationStats


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0-100) by linear interpolation between closest ranks (numpy's
    default method). `values` must not be empty."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float]) -> DurationStats:
    if not values:
        return DurationStats(count=0, mean_s=None, p95_s=None)
    return DurationStats(
        count=len(values), mean_s=sum(values) / len(values), p95_s=percentile(values, 95.0)
    )
