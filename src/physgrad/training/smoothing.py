"""Running means of learning curves that never reach back into the burn-in.

A trailing mean over ``window`` mini-batches still holds the first iterations' huge losses
until ``window`` iterations have passed, so every smoothed curve steps down at iteration
``window`` and a "ratio at iteration 60" is a cumulative mean. Here the window at any point is
``window`` but at most the later half of the values seen so far, and a window longer than the
run can never occur.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smoothing_window(available: int, window: int) -> int:
    """Values averaged when ``available`` values exist: ``min(window, ceil(available / 2))``,
    at least 1 (``window <= 0``: all of them)."""
    if window <= 0:
        return max(1, available)
    return max(1, min(window, (available + 1) // 2))


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean at every index ``i`` over the last ``smoothing_window(i + 1, window)``
    values: ``(N,) -> (N,)`` float64."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    prefix = np.concatenate([[0.0], np.cumsum(v)])
    n = np.arange(1, v.size + 1)
    w = np.maximum(1, np.minimum(window, (n + 1) // 2)) if window > 0 else n
    return (prefix[n] - prefix[n - w]) / w
