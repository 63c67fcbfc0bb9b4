"""The paper's quantitative statements, as data, and the same quantities measured on our runs.

Every number the report prints as "paper" comes from :data:`PAPER_NUMBERS` (quoted from the
ICLR 2022 text, section given in ``source``); :func:`measure` computes the matching value from
one or more :class:`~physgrad.experiments.runner.Comparison` (one per seed) with the same
definitions the comparison tables use (running mean over ``experiment.smoothing``
mini-batches of the headline metric ``experiment.metrics[0]``), and :func:`paper_rows` puts
both side by side, one row per statement.

Kinds of statement:

* ``"reach"``: iterations ``method`` needs until its running-mean error is at or below the
  baseline's final error (the baseline trained for ``at`` iterations in the paper; ours for
  the run's length).
* ``"ratio"``: baseline error / method error at iteration ``at`` (``None``: at the end of
  training). Where our run is shorter than ``at``, ours is taken at our last iteration and the
  table says so.
* ``"final"``: the method's final error.
* ``"time"``: median time per training iteration, method / baseline (Fig. 14).

A statement about a solver we only run on request (the paper's scipy L-BFGS-B PG for heat,
``pg-lbfgsb``: a Python loop over the batch) names a ``stand_in``, our method measured in its
place when the paper's was not run; the row then says so in its method cell.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from physgrad.experiments.paper import (
    KINDS,
    PAPER_NUMBERS,  # noqa: F401 - cited by the report
    PaperNumber,
    paper_numbers,
)
from physgrad.experiments.runner import (
    final_value,
    first_at_or_below,
    iterations_to_reach,
    value_at,
)
from physgrad.stats import interval
from physgrad.training.trainer import History

if TYPE_CHECKING:
    from physgrad.experiments.runner import Comparison

@dataclass(frozen=True)
class Measured:
    """Our value of a :class:`PaperNumber`: one value per seed (``None``: never reached)."""

    values: tuple[float | None, ...]
    where: str
    """Where / how it was measured, e.g. ``"iteration 60 of 300"``."""
    method: str = ""
    """The method measured: the statement's, or its ``stand_in``."""


def measure(number: PaperNumber, comparisons: Sequence[Comparison]) -> Measured | None:
    """Our value of ``number`` on ``comparisons`` (one per seed), or None if the method or the
    baseline was not run."""
    if not comparisons:
        return None
    first = comparisons[0]
    exp = first.experiment
    base = exp.baseline
    method = next(
        (m for m in (number.method, number.stand_in)
         if m is not None and all(m in c.histories and base in c.histories for c in comparisons)),
        None,
    )
    if method is None:
        return None
    metric, window = exp.metrics[0], exp.smoothing
    if number.kind != "time" and all(
        metric in c.heldout.get(k, History()).columns
        for c in comparisons
        for k in (base, method)
    ):
        return _measure_heldout(number, comparisons, base, method, metric)
    values: list[float | None] = []
    where = ""
    for c in comparisons:
        b, m = c.histories[base], c.histories[method]
        n = min(len(b), len(m))
        if number.kind == "reach":
            target = final_value(b[metric], window)
            values.append(_as_float(iterations_to_reach(m[metric], target, window)))
            where = f"{base}'s final (mean of its last {window} of {len(b)} iterations)"
            if b[metric][0] <= target:
                where += (
                    f"; {base}'s own iteration-0 error is already at or below its final (it "
                    "grows during training), so this is met from the start"
                )
        elif number.kind == "ratio":
            if number.at is not None and number.at < n:
                it, where = number.at, f"iteration {number.at}"
            else:
                it = n - 1
                where = f"end, iteration {it}" + (
                    f" (our run is shorter than {number.at:,})" if number.at is not None else ""
                )
            den = value_at(m[metric], it, window)
            values.append(value_at(b[metric], it, window) / den if den else float("inf"))
        elif number.kind == "final":
            values.append(final_value(m[metric], window))
            where = f"end, mean of the last {window} of {len(m)} iterations"
        else:  # time
            values.append(statistics.median(m["step_time"]) / statistics.median(b["step_time"]))
            where = "median step time over the run"
    return Measured(tuple(values), where, method)


def _measure_heldout(
    number: PaperNumber, comparisons: Sequence[Comparison], base: str, method: str, metric: str
) -> Measured:
    """:func:`measure` on the held-out scores (the network after N iterations, scored on
    fixed problems it never trained on), rather than on smoothed training batches."""
    values: list[float | None] = []
    where = ""
    for c in comparisons:
        b, m = c.heldout[base], c.heldout[method]
        its = [int(i) for i in b["iteration"]]
        if number.kind == "reach":
            target = b[metric][-1]
            values.append(_as_float(first_at_or_below(m, metric, target)))
            where = (f"held-out {metric}; {base} trained {its[-1]:,} iterations (evaluated every "
                     f"{its[1] - its[0] if len(its) > 1 else its[0]:,})")
        elif number.kind == "ratio":
            last = min(its[-1], int(m["iteration"][-1]))
            at = number.at if number.at is not None and number.at <= last else last
            i = max(k for k, it in enumerate(its) if it <= at)
            j = max(k for k, it in enumerate(m["iteration"]) if it <= its[i])
            values.append(b[metric][i] / m[metric][j] if m[metric][j] else float("inf"))
            where = f"held-out, iteration {its[i]:,}"
            if number.at is not None and number.at > last:
                where += f" (our run is shorter than {number.at:,})"
        else:  # final
            values.append(m[metric][-1])
            where = f"held-out, iteration {int(m['iteration'][-1]):,}"
    return Measured(tuple(values), where, method)


def format_values(values: Sequence[float | None], kind: str) -> str:
    """One value, or the mean over seeds with its 95% interval (geometric mean and a log-scale
    interval for ratios); ``reach`` counts the seeds that never reached."""
    reached = [v for v in values if v is not None]
    if not reached:
        return "never" if len(values) == 1 else f"never (0/{len(values)} seeds)"
    suffix = "x" if kind in ("ratio", "time") else ""
    if len(reached) == 1:
        v = reached[0]
        text = f"{int(v)}" if kind == "reach" else f"{v:.3g}{suffix}"
    else:
        positive = all(v > 0 and math.isfinite(v) for v in reached)
        mean, lo, hi = interval(reached, log=bool(suffix) and positive)
        text = f"{mean:.3g}{suffix} (95% CI {lo:.3g}–{hi:.3g}{suffix}, {len(reached)} seeds)"
    if len(reached) < len(values):
        text += f" ({len(reached)}/{len(values)} seeds reached)"
    return text


def verdict(number: PaperNumber, values: Sequence[float | None]) -> str:
    """``reproduced`` / ``partly`` / ``not reproduced`` for our per-seed ``values``.

    Rules (stated in the report): a *ratio* is reproduced when every seed shows the method
    ahead (> 1) and the geometric mean is within a factor 2 of the paper's value (or above
    it), partly when the mean is ahead but further off, not when it is not ahead. An
    *iterations-to-reach* number is reproduced when every seed reaches within twice the
    paper's count, partly when some seed reaches at all. A *final accuracy* is reproduced
    within 10×, partly within 100×. A *time ratio* is reproduced within a factor 1.5 (for the
    paper's "< 1.1x": at most 1.1 × 1.5).
    """
    reached = [v for v in values if v is not None]
    if not reached:
        return "not reproduced"
    if number.kind == "ratio":
        gmean = math.exp(statistics.mean(math.log(max(v, 1e-300)) for v in reached))
        if all(v > 1 for v in reached) and gmean >= number.value / 2:
            return "reproduced"
        return "partly" if gmean > 1 else "not reproduced"
    if number.kind == "reach":
        if len(reached) == len(values) and max(reached) <= 2 * number.value:
            return "reproduced"
        return "partly"
    mean = statistics.mean(reached)
    if number.kind == "final":
        off = max(mean / number.value, number.value / mean) if mean > 0 else math.inf
        return "reproduced" if off <= 10 else "partly" if off <= 100 else "not reproduced"
    return "reproduced" if mean <= 1.5 * number.value else "not reproduced"  # time


_QUANTITY = {
    "reach": "iterations to reach {base}'s final {metric}",
    "ratio": "{base} / method {metric} at {at}",
    "final": "final {metric}",
    "time": "time per iteration / {base}",
}


def paper_rows(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """One row per paper statement about this experiment: quantity, paper, ours."""
    if not comparisons:
        return []
    exp = comparisons[0].experiment
    rows = []
    numbers = sorted(paper_numbers(exp.name), key=lambda p: KINDS.index(p.kind))
    for number in numbers:
        measured = measure(number, comparisons)
        if measured is None:
            continue
        at = "the end" if number.at is None else f"iteration {number.at:,}"
        quantity = _QUANTITY[number.kind].format(base=exp.baseline, metric=exp.metrics[0], at=at)
        if number.kind == "reach":
            quantity += f" (paper: {exp.baseline} trained {number.at:,} iterations)"
        name, judged = measured.method, verdict(number, measured.values)
        if name != number.method:
            name = (f"{_described(exp, name)} in place of the paper's "
                    f"{_described(exp, number.method)}: a different solver")
            judged += " (with a different solver)"
        rows.append(
            {
                "method": name,
                "quantity": quantity,
                "paper": number.shown,
                "source": number.source,
                "ours": format_values(measured.values, number.kind),
                "ours measured at": measured.where,
                "same length?": _same_length(number, comparisons),
                "verdict": judged,
            }
        )
    return rows


def _same_length(number: PaperNumber, comparisons: Sequence[Comparison]) -> str:
    ours = min(c.iterations for c in comparisons)
    if number.kind in ("final", "time") or number.at is None:
        return "–"
    if ours >= number.at:
        return "yes"
    return f"no: ours {ours:,} vs paper {number.at:,} iterations"


def _described(experiment: Any, method: str) -> str:
    spec = experiment.methods.get(method)
    return f"{method} ({spec.label})" if spec is not None else method


def _as_float(value: int | None) -> float | None:
    return None if value is None else float(value)

