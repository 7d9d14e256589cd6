"""Percentiles and the latency summary every table uses."""

from __future__ import annotations

import math


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank q-quantile of an already sorted list (NaN when empty)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": percentile(ordered, 0.50),
        "p90_ms": percentile(ordered, 0.90),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else math.nan,
        "samples": len(ordered),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan
