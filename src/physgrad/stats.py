"""Intervals over seeds: the one statistics helper the tables and the report share."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def interval(values: Sequence[float], log: bool = False) -> tuple[float, float, float]:
    """Mean and two-sided 95% Student-t confidence interval over seeds.

    Args:
        values: one value per seed (at least 2).
        log: compute on log values (for ratios; all values must be > 0): the mean is then the
            geometric mean and the interval is symmetric in log space.

    Returns:
        ``(mean, low, high)``.
    """
    from scipy.stats import t

    if len(values) < 2:
        raise ValueError(f"an interval needs at least 2 values, got {len(values)}")
    xs = [math.log(v) for v in values] if log else [float(v) for v in values]
    mean = statistics.mean(xs)
    half = float(t.ppf(0.975, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs))
    lo, hi = mean - half, mean + half
    return (math.exp(mean), math.exp(lo), math.exp(hi)) if log else (mean, lo, hi)
