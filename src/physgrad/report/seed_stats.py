"""Claims as distributions over seeds: per-seed final values -> medians, IQRs, ratio counts.

One training run of a chaotic problem is one draw; a claim such as "PG is 100x more accurate
than Adam" is a statement about the distribution over seeds. These helpers read per-seed final
values (CSV rows ``method, seed, <metric>..., status``), pair every method's seed with the
baseline's same seed, and summarise: median and interquartile range per method, the median
per-seed ratio ``baseline / method``, and how many seeds reach a ratio of at least 10, 100 and
1000. The same functions feed the committed tables and ``tests/test_quoted_numbers.py``, so a
sentence quoting them cannot drift from the data.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physgrad.table import Table

LEVELS = (10, 100, 1000)
"""Ratio levels counted per method (seeds whose baseline / method ratio is at least this)."""


def read_rows(paths: Iterable[Path | str]) -> list[dict[str, str]]:
    """All rows of the given CSV files (each with a header), as strings."""
    rows: list[dict[str, str]] = []
    for path in paths:
        with open(path, newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def per_seed(rows: Sequence[dict[str, str]], method: str, metric: str) -> dict[int, float]:
    """``{seed: value}`` of ``metric`` for ``method``; a run that did not finish (``status``
    other than ``ok``) counts as ``inf`` (it reached no accuracy at all)."""
    out = {}
    for row in rows:
        if row["method"] == method:
            ok = row.get("status", "ok") == "ok"
            out[int(row["seed"])] = float(row[metric]) if ok else math.inf
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile with linear interpolation (numpy's default), where a failed run's
    ``inf`` makes every quantile that reaches it ``inf`` (numpy would give NaN)."""
    v = np.sort(np.asarray(values, dtype=float))
    pos = q * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or v[lo] == v[hi]:
        return float(v[lo])
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


@dataclass(frozen=True)
class MethodSummary:
    """Distribution over seeds of one method's final ``metric`` and of its ratio to the
    baseline (``baseline / method`` per seed: > 1 means the method is more accurate)."""

    method: str
    seeds: int
    median: float
    q1: float
    q3: float
    ratio_median: float
    reach: dict[int, int]
    """``{level: number of seeds with ratio >= level}`` for :data:`LEVELS`."""
    failed: int


def summarise(
    rows: Sequence[dict[str, str]],
    methods: Sequence[str],
    metric: str,
    baseline: str = "adam",
) -> list[MethodSummary]:
    """One :class:`MethodSummary` per method, on the seeds it shares with ``baseline``.

    Raises:
        ValueError: if a method has no seed in common with the baseline.
    """
    base = per_seed(rows, baseline, metric)
    out = []
    for method in methods:
        values = per_seed(rows, method, metric)
        seeds = sorted(set(values) & set(base))
        if not seeds:
            raise ValueError(f"method {method!r} shares no seed with baseline {baseline!r}")
        v = np.array([values[s] for s in seeds])
        ratio = np.array([base[s] / values[s] for s in seeds])
        q1, median, q3 = (quantile(v, q) for q in (0.25, 0.5, 0.75))
        out.append(
            MethodSummary(
                method=method,
                seeds=len(seeds),
                median=float(median),
                q1=float(q1),
                q3=float(q3),
                ratio_median=float(np.median(ratio)),
                reach={level: int((ratio >= level).sum()) for level in LEVELS},
                failed=int(np.isinf(v).sum()),
            )
        )
    return out


def fmt_value(value: float) -> str:
    """Error values as quoted in the docs: ``3.7e-03``."""
    return "inf" if math.isinf(value) else f"{value:.1e}"


def fmt_ratio(value: float) -> str:
    """Ratios as quoted in the docs: ``84×``, ``2.5×``, ``0.31×``."""
    if math.isinf(value):
        return "inf"
    return f"{value:.0f}×" if value >= 10 else f"{value:.2g}×"


def markdown_table(summaries: Sequence[MethodSummary], baseline: str = "adam") -> str:
    """Markdown rows: method, seeds, median [IQR], median ratio, seeds reaching each level."""
    table = Table(["method", "seeds", "median", "IQR", f"median {baseline} / method",
                   *(f"≥{level}×" for level in LEVELS)])
    for s in summaries:
        n = s.seeds
        if s.method == baseline:  # its ratio to itself is 1 on every seed: say nothing
            ratio, reach = "–", ["–" for _ in LEVELS]
        else:
            ratio, reach = fmt_ratio(s.ratio_median), [f"{s.reach[lv]}/{n}" for lv in LEVELS]
        failed = f" ({s.failed} failed)" if s.failed else ""
        table.add(s.method, f"{n}{failed}", fmt_value(s.median),
                  f"{fmt_value(s.q1)} – {fmt_value(s.q3)}", ratio, *reach)
    return table.markdown()


@dataclass(frozen=True)
class HeldoutRatio:
    """``baseline / method`` of the final held-out ``metric`` over the seeds of a committed
    seed study: geometric mean and 95% Student-t interval of the per-seed ratios."""

    seeds: int
    iterations: int
    mean: float
    low: float
    high: float


def heldout_ratio(
    folder: Path | str, method: str, metric: str, baseline: str = "adam"
) -> HeldoutRatio | None:
    """The held-out ratio ``baseline / method`` over the ``seed<S>/`` folders of ``folder``
    (each ``seed<S>/<method>/heldout.csv`` as written by ``physgrad compare --seeds``, last row
    = final network), or ``None`` when fewer than 2 seeds have both files (e.g. a pip-installed
    package without the repository's ``docs/results``)."""
    from physgrad.stats import interval

    ratios, iterations = [], 0
    for seed_dir in sorted(Path(folder).glob("seed*")):
        files = [seed_dir / m / "heldout.csv" for m in (baseline, method)]
        if not all(f.exists() for f in files):
            continue
        (base_rows, rows) = (read_rows([f]) for f in files)
        ratios.append(float(base_rows[-1][metric]) / float(rows[-1][metric]))
        iterations = int(float(rows[-1]["iteration"]))
    if len(ratios) < 2:
        return None
    return HeldoutRatio(len(ratios), iterations, *interval(ratios, log=True))
