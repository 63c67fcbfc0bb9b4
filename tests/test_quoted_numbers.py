"""Numbers quoted in README.md, BENCHMARKS.md and docs/ are recomputed from committed data.

Each :class:`Quote` names a document, a sentence template with ``{placeholders}`` and a
function that computes the placeholders from files under ``docs/results/``. The test fills
the template and requires the document to contain the result (whitespace and line breaks
normalised), so a sentence and its data cannot disagree: change the data and the sentence
must change with it. To cover another experiment, add its artifacts under ``docs/results/``,
a value function reading them, and one ``Quote`` per sentence.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from physgrad.report.seed_stats import (
    LEVELS,
    fmt_ratio,
    fmt_value,
    per_seed,
    read_rows,
    summarise,
)
from physgrad.report.sine_seeds import runs_by_length, tables_markdown

ROOT = Path(__file__).resolve().parents[1]
SINE_SEEDS = ROOT / "docs" / "results" / "sine-seeds"
SPIKES = ROOT / "docs" / "results" / "sine-spikes"


@dataclass(frozen=True)
class Quote:
    """A sentence of ``document`` whose ``{placeholders}`` ``values()`` computes."""

    document: str
    template: str
    values: Callable[[], dict[str, str]]


@cache
def sine_seeds(iterations: int, metric: str, method: str = "pg-analytic") -> dict[str, str]:
    """``method`` against ``adam`` over the seeds of ``docs/results/sine-seeds`` at
    ``iterations``: ``n``, ``adam``/``pg`` (medians), ``adam_iqr``/``pg_iqr``, ``ratio``
    (median per-seed ratio) and ``reach10``/``reach100``/``reach1000`` (seeds at >= that)."""
    rows = read_rows(runs_by_length(SINE_SEEDS)[iterations])
    adam, other = summarise(rows, ["adam", method], metric)
    return {
        "n": str(other.seeds),
        "adam": fmt_value(adam.median),
        "pg": fmt_value(other.median),
        "adam_iqr": f"{fmt_value(adam.q1)} – {fmt_value(adam.q3)}",
        "pg_iqr": f"{fmt_value(other.q1)} – {fmt_value(other.q3)}",
        "ratio": fmt_ratio(other.ratio_median),
        **{f"reach{level}": str(other.reach[level]) for level in LEVELS},
    }


def sine_tables() -> dict[str, str]:
    """Every table of ``docs/results/sine-seeds/README.md``, regenerated from its CSVs."""
    return {"tables": tables_markdown(SINE_SEEDS)}


@cache
def sine_spikes(method: str, seed: int) -> dict[str, str]:
    """From ``docs/results/sine-spikes/spikes_<method>_seed<seed>.json``: the spike events
    whose held-out mean error jumped >= 100x (``events``), and over them the smallest share of
    samples whose own error grew >= 2x (``up2_min``), the median share that grew >= 10x
    (``up10``) and the largest share that changed to another minimum (``switched_max``)."""
    data = json.loads((SPIKES / f"spikes_{method}_seed{seed}.json").read_text())
    big = [e for e in data["events"] if e["mean_peak"] >= 100 * e["mean_t0"]]
    if not big:
        return {"events": "0", "up2_min": "–", "up10": "–", "switched_max": "–"}
    return {
        "events": str(len(big)),
        "up2_min": f"{min(e['frac_up_2x'] for e in big):.0%}",
        "up10": f"{statistics.median(e['frac_up_10x'] for e in big):.0%}",
        "switched_max": f"{max(e['frac_switched'] for e in big):.1%}",
    }


@cache
def sine_decay(metric: str) -> dict[str, str]:
    """Medians over the seeds of ``adam-lr-decay_10000.csv`` of ``metric`` for ``adam``,
    ``adam-lr-decay``, ``pg-analytic`` and ``pg-analytic-lr-decay`` (keys with ``_`` for
    ``-``), and ``seeds``, the seeds used."""
    rows = read_rows(runs_by_length(SINE_SEEDS)[10_000])
    seeds = sorted(per_seed(rows, "adam-lr-decay", metric))
    out = {"seeds": f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1))
           else ", ".join(map(str, seeds))}
    for method in ("adam", "adam-lr-decay", "pg-analytic", "pg-analytic-lr-decay"):
        values = per_seed(rows, method, metric)
        out[method.replace("-", "_")] = fmt_value(statistics.median(values[s] for s in seeds))
    decayed = per_seed(rows, "adam-lr-decay", metric)
    out["unsettled"] = str(sum(decayed[s] > 1e-3 for s in seeds))  # never found a minimum
    out["n"] = str(len(seeds))
    return out


def _sine(iterations: int, metric: str, method: str = "pg-analytic"):
    return lambda: sine_seeds(iterations, metric, method)


QUOTES = [
    Quote("docs/results/sine-seeds/README.md", "{tables}", sine_tables),
    Quote("BENCHMARKS.md", "{tables}", sine_tables),
    Quote(
        "README.md",
        "at 10k iterations the running-mean error of Adam + PG (analytic) is {ratio} below "
        "Adam's (median over {n} seeds; ≥100× on {reach100}/{n}, ≥1000× on {reach1000}/{n})",
        _sine(10_000, "mean_y_l1"),
    ),
    Quote(
        "README.md",
        "on the held-out test set the median ratio is {ratio}",
        _sine(10_000, "heldout_mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "median {adam} (IQR {adam_iqr}) for Adam and {pg} (IQR {pg_iqr}) for Adam + PG "
        "(analytic), a median per-seed ratio of {ratio}; {reach10}/{n} seeds reach ≥10×, "
        "{reach100}/{n} ≥100× and {reach1000}/{n} ≥1000×",
        _sine(10_000, "mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "the held-out test error of the final networks: median {adam} for Adam and {pg} for "
        "Adam + PG (median ratio {ratio}, ≥100× on {reach100}/{n} seeds)",
        _sine(10_000, "heldout_mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "At 20,000 iterations ({n} seeds, the 10k runs continued) the median running-mean "
        "ratio is {ratio} (≥100× on {reach100}/{n}, ≥1000× on {reach1000}/{n})",
        _sine(20_000, "mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "and the median held-out ratio {ratio}",
        _sine(20_000, "heldout_mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "The old variant `adam-clip-dp` ends at a median running mean of {pg} (median ratio "
        "Adam / it {ratio})",
        _sine(10_000, "mean_y_l1", "adam-clip-dp"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "Adam (seed 9): in each of its {events} spikes where the held-out mean error jumped "
        "≥100×, at least {up2_min} of the held-out samples' errors grew ≥2× (median {up10} "
        "grew ≥10×), and at most {switched_max} of them ended at another minimum",
        lambda: sine_spikes("adam", 9),
    ),
    Quote(
        "docs/experiments/sine.md",
        "Adam + PG (analytic, seed 1): {events} such spikes, at least {up2_min} of samples up "
        "≥2×, at most {switched_max} at another minimum",
        lambda: sine_spikes("pg-analytic", 1),
    ),
    Quote(
        "docs/experiments/sine.md",
        "on seeds {seeds} the median running mean falls from {adam} to {adam_lr_decay} for Adam "
        "and from {pg_analytic} to {pg_analytic_lr_decay} for Adam + PG (analytic); with the "
        "decay Adam ends above 1e-3 on {unsettled} of the {n} seeds",
        lambda: sine_decay("mean_y_l1"),
    ),
    Quote(
        "docs/experiments/sine.md",
        "the median held-out error goes from {adam} to {adam_lr_decay} (Adam) and from "
        "{pg_analytic} to {pg_analytic_lr_decay} (Adam + PG)",
        lambda: sine_decay("heldout_mean_y_l1"),
    ),
]


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: f"{q.document}:{q.template[:40]}")
def test_document_quotes_what_its_data_gives(quote: Quote):
    expected = _normalise(quote.template.format(**quote.values()))
    text = _normalise((ROOT / quote.document).read_text())
    assert expected in text, (
        f"{quote.document} should contain (recomputed from docs/results/):\n{expected}"
    )


def test_a_changed_number_is_caught(tmp_path):
    """The check is not vacuous: the same sentence with one number altered fails."""
    quote = QUOTES[2]
    values = dict(quote.values())
    values["n"] = str(int(values["n"]) + 1)
    wrong = _normalise(quote.template.format(**values))
    assert wrong not in _normalise((ROOT / quote.document).read_text())


def test_seed_summary_pairs_seeds_and_counts_ratio_levels():
    rows = [
        {"method": "adam", "seed": "0", "v": "1.0", "status": "ok"},
        {"method": "adam", "seed": "1", "v": "1.0", "status": "ok"},
        {"method": "adam", "seed": "2", "v": "1.0", "status": "ok"},
        {"method": "pg", "seed": "0", "v": "1e-4", "status": "ok"},
        {"method": "pg", "seed": "1", "v": "0.02", "status": "ok"},
        {"method": "pg", "seed": "2", "v": "nan", "status": "diverged"},
        {"method": "pg", "seed": "9", "v": "1e-9", "status": "ok"},  # no adam seed 9: unpaired
    ]
    (pg,) = summarise(rows, ["pg"], "v")
    assert (pg.seeds, pg.failed) == (3, 1)
    assert pg.median == 0.02 and pg.ratio_median == 50.0
    assert pg.reach == {10: 2, 100: 1, 1000: 1}
