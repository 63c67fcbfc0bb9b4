"""Where the long runs stand, and what they say about the paper's long-horizon claims.

Reads ``<root>/<experiment>/seed<S>/<method>/heldout.csv`` (the long-run folders of
docs/long-runs.md, finished or not; runs in progress are read as far as they have been
checkpointed) and, where present, ``<root>/<experiment>/early/seed<S>/<method>/heldout.csv``:
the same runs' first iterations trained again and scored densely (a run of ``--iters 200``
is scored every 4 iterations; scoring does not change training, so the trajectory is the same,
and the scores both runs have must agree exactly or the script stops). It prints markdown, per
experiment:

1. the held-out headline metric per seed and method at fixed iterations;
2. over the seeds that reached N: the baseline/method held-out ratio at N (geometric mean and
   95% interval) and the iterations a method needs to reach the baseline's held-out error at
   N (the paper's "iterations to reach Adam's accuracy at 10k"; resolution: the evaluation
   cadence, every 100 iterations at the ``long`` scale, every 4 over the early re-runs);
3. the paper's statements at a training length (:data:`physgrad.report.paper_numbers.PAPER_NUMBERS`)
   next to ours at that length or the longest every seed reached, with the report's verdict
   rule.

With ``--figures``, also ``<root>/<experiment>/heldout-long.png``: every seed's held-out
curve and the per-method geometric mean.

    python benchmarks/long_runs_table.py [--root docs/results/long] [--figures]

docs/results/long/STATUS.md is this script's output on the committed data (a test checks
that it still is).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from physgrad.experiments import get_experiment
from physgrad.io import atomic_write
from physgrad.report.paper_numbers import PAPER_NUMBERS, format_values, verdict

CHECKPOINTS = (100, 500, 600, 1000, 2000, 3000, 5000, 10000)
"""Iterations tabulated where some run was scored there (600: the fluid ``cpu`` scale)."""


def checkpoints(runs: Runs) -> list[int]:
    """The :data:`CHECKPOINTS` at which at least one run was scored."""
    return [n for n in CHECKPOINTS if any(n in scores for scores in runs.values())]

Runs = dict[tuple[str, str], dict[int, float]]


def read(path: Path, metric: str) -> dict[int, float]:
    with open(path, newline="") as fh:
        return {int(float(r["iteration"])): float(r[metric]) for r in csv.DictReader(fh)}


def reach(scores: dict[int, float], level: float) -> int | None:
    return next((it for it in sorted(scores) if scores[it] <= level), None)


def load(exp_dir: Path, metric: str) -> Runs:
    runs = {
        (path.parent.parent.name, path.parent.name): read(path, metric)
        for path in sorted(exp_dir.glob("seed*/*/heldout.csv"))
    }
    for path in sorted(exp_dir.glob("early/seed*/*/heldout.csv")):
        key = (path.parent.parent.name, path.parent.name)
        if key in runs:
            name = f"{exp_dir.name}/{key[0]}/{key[1]}"
            runs[key] = merge_early(runs[key], read(path, metric), name)
    return runs


def merge_early(scores: dict[int, float], early: dict[int, float], name: str) -> dict[int, float]:
    """The long run's scores with the early re-run's denser ones added, once every iteration
    both scored agrees exactly (same weights, same held-out problems): a difference means the
    re-run did not retrace the run, and its scores would be another run's."""
    for it in sorted(scores.keys() & early.keys()):
        if scores[it] != early[it]:
            raise SystemExit(f"{name}: the early re-run scores {early[it]!r} at iteration {it}, "
                             f"the run {scores[it]!r}: not the same trajectory")
    return dict(sorted({**early, **scores}.items()))


def seeds_with(runs: Runs, n: int, *methods: str) -> list[str]:
    """The seeds whose runs of every one of ``methods`` were evaluated at iteration ``n``."""
    seeds = sorted({s for s, _ in runs})
    return [s for s in seeds if all(n in runs.get((s, m), {}) for m in methods)]


def per_seed_table(runs: Runs, baseline: str) -> list[str]:
    columns = checkpoints(runs)
    lines = ["| seed | method | last iteration | " + " | ".join(f"@{n:,}" for n in columns)
             + " |", "|---|---|---|" + "---|" * len(columns)]
    for (seed, method), scores in runs.items():
        cells = [f"{scores[n]:.4g}" if n in scores else "" for n in columns]
        lines.append(f"| {seed} | {method} | {max(scores):,} | " + " | ".join(cells) + " |")
    return lines


def across_seeds_table(runs: Runs, baseline: str, methods: list[str], metric: str) -> list[str]:
    lines = [f"| method | N | seeds | {baseline} / method held-out {metric} at N | "
             f"iterations to reach {baseline}'s held-out {metric} at N |", "|---|---|---|---|---|"]
    for method in methods:
        for n in checkpoints(runs):
            seeds = seeds_with(runs, n, baseline, method)
            if not seeds:
                continue
            ratios = [runs[(s, baseline)][n] / runs[(s, method)][n] for s in seeds]
            reached = [reach(runs[(s, method)], runs[(s, baseline)][n]) for s in seeds]
            reach_values = [None if r is None else float(r) for r in reached]
            lines.append(f"| {method} | {n:,} | {len(seeds)} | {format_values(ratios, 'ratio')} "
                         f"| {reach_text(reach_values)} |")
    return lines


def reach_text(values: list[float | None]) -> str:
    """Per seed, the first evaluation at or below the level: "<= 100" means somewhere after the
    previous evaluation and by iteration 100 (an interval over seeds would claim more precision
    than the evaluation cadence gives)."""
    cells = ["never" if v is None else f"<= {int(v):,}" for v in values]
    if len(set(cells)) == 1:
        return f"{cells[0]} (all {len(cells)} seeds)" if len(cells) > 1 else cells[0]
    return ", ".join(cells) + " (per seed)"


def paper_claims_table(experiment: str, runs: Runs, baseline: str, metric: str) -> list[str]:
    """The paper's statements at a training length against ours at that length, or else at
    the longest earlier evaluation that the most seeds reached (the row says when that is
    shorter than the paper's; a verdict needs three seeds there)."""
    lines = []
    for number in PAPER_NUMBERS:
        if number.experiment != experiment or number.at is None:
            continue
        if number.kind not in ("ratio", "reach"):
            continue
        method = number.method
        scored = {n for (_, m), scores in runs.items() if m == method for n in scores}
        lengths = [n for n in scored
                   if 0 < n <= number.at and seeds_with(runs, n, baseline, method)]
        if not lengths:
            continue
        n = max(lengths, key=lambda k: (len(seeds_with(runs, k, baseline, method)), k))
        seeds = seeds_with(runs, n, baseline, method)
        if number.kind == "ratio":
            values: list[float | None] = [
                runs[(s, baseline)][n] / runs[(s, method)][n] for s in seeds]
            quantity = f"{baseline} / {method} held-out {metric} at iteration N"
        else:
            values = [None if (r := reach(runs[(s, method)], runs[(s, baseline)][n])) is None
                      else float(r) for s in seeds]
            quantity = f"iterations {method} needs to reach {baseline}'s held-out {metric} at N"
        shown = (reach_text(values) if number.kind == "reach"
                 else format_values(values, number.kind))
        same = "yes" if n == number.at else f"no: N = {n:,} vs paper {number.at:,}"
        judged = verdict(number, values) if len(seeds) >= 3 else f"open ({len(seeds)} seeds < 3)"
        if len(seeds) >= 3 and n < number.at:
            judged += f" at {n:,} iterations (the paper's is at {number.at:,})"
        lines.append(f"| {quantity} | {number.shown} at {number.at:,} ({number.source}) | "
                     f"{shown} | {n:,} | {same} | {judged} |")
    if not lines:
        return []
    return ["| quantity | paper | ours | N | same length? | verdict |",
            "|---|---|---|---|---|---|", *lines]


def figure(exp_dir: Path, runs: Runs, metric: str, labels: dict[str, str], log_y: bool) -> Path:
    """One panel per seed (each network initialisation, as the paper's Fig. 11/12 bottom rows)
    and a last panel with every method's geometric mean over the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physgrad.report.plots import method_color, readable_log_axis

    seeds = sorted({s for s, _ in runs})
    methods = list(dict.fromkeys(m for _, m in runs))
    fig, axes = plt.subplots(1, len(seeds) + 1, figsize=(3.2 * (len(seeds) + 1), 3.4),
                             sharey=True, squeeze=False)
    for ax, seed in zip(axes[0], seeds, strict=False):
        for method in methods:
            scores = runs.get((seed, method))
            if scores:
                its = sorted(scores)
                ax.plot(its, [scores[i] for i in its], color=method_color(labels.get(method,
                        method)), lw=1.2)
        ax.set_title(f"{seed} (own initial weights)", fontsize=9)
    mean_ax = axes[0][-1]
    for method in methods:
        label = labels.get(method, method)
        series = [runs[k] for k in runs if k[1] == method]
        common = sorted(set.intersection(*(set(s) for s in series)))
        mean = [math.exp(sum(math.log(s[i]) for s in series) / len(series)) for i in common]
        mean_ax.plot(common, mean, color=method_color(label), lw=1.6,
                     label=f"{label} ({len(series)} seeds)")
    mean_ax.set_title("geometric mean over seeds", fontsize=9)
    mean_ax.legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3, which="both")
        if log_y:
            ax.set_yscale("log")
    if log_y:
        readable_log_axis(axes[0][0])
    axes[0][0].set_ylabel(f"held-out {metric}")
    fig.suptitle(f"{exp_dir.name}: held-out {metric} during training", fontsize=10)
    fig.tight_layout()
    path = exp_dir / "heldout-long.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return path


TITLE = """# Long runs: the paper's long-horizon claims, where the runs stand

Generated by `python benchmarks/long_runs_table.py --figures` from the committed run folders
below this page ([how they are run and continued](../../long-runs.md)); `tests/test_long_runs.py`
checks that it still matches them. Each run trains at batch 32 (fluid: 64) on one CPU thread
and is continued across sessions from its committed checkpoint.
"""


def report(root: Path, baseline: str, figures: bool) -> str:
    out: list[str] = [TITLE]
    for exp_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        exp = get_experiment(exp_dir.name)
        metric = exp.metrics[0]
        runs = load(exp_dir, metric)
        if not runs:
            continue
        methods = [m for m in dict.fromkeys(m for _, m in runs) if m != baseline]
        out += [f"### {exp_dir.name}: held-out {metric} ({exp.heldout} fixed problems; batch-norm "
                "statistics re-estimated for the current weights: docs/evaluation.md)", "",
                *per_seed_table(runs, baseline), ""]
        out += [f"Over seeds (ratios: geometric mean and 95% interval; iterations to reach: "
                f"first evaluation at or below, {_cadence(runs)}):", "",
                *across_seeds_table(runs, baseline, methods, metric), ""]
        claims = paper_claims_table(exp_dir.name, runs, baseline, metric)
        if claims:
            ours, paper = exp.scales["long"].batch_size, exp.scales["paper"].batch_size
            batches = (f"batch {ours} as in the paper" if ours == paper
                       else f"batch {ours} here, {paper} in the paper")
            out += ["The paper's statements at a training length against ours (verdict rule as "
                    f"in the report; needs >= 3 seeds; {batches}):", "",
                    *claims, ""]
        if figures:
            labels = {m: exp.methods[m].label for m in exp.methods}
            path = figure(exp_dir, runs, metric, labels, exp.log_y)
            out += [f"![held-out {metric}]({path.relative_to(root).as_posix()})", ""]
    return "\n".join(out)


def _cadence(runs: Runs) -> str:
    """The evaluation spacing, e.g. "every 100 iterations" or, with early re-runs and runs
    continued with a larger ``--iters``, "every 4 iterations up to 200, every 100 up to 5,000,
    every 200 after" (from the first run)."""
    its = sorted(next(iter(runs.values())))
    gaps = [b - a for a, b in zip(its, its[1:], strict=False)]
    if not gaps:
        return "?"
    parts = []
    for k, gap in enumerate(gaps):
        if k + 1 == len(gaps) or gaps[k + 1] != gap:  # the last gap of a constant stretch
            parts.append((gap, its[k + 1]))
    if len(parts) == 1:
        return f"every {parts[0][0]:,} iterations"
    text = [f"every {parts[0][0]:,} iterations up to {parts[0][1]:,}"]
    text += [f"every {gap:,} up to {end:,}" for gap, end in parts[1:-1]]
    return ", ".join([*text, f"every {parts[-1][0]:,} after"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="docs/results/long")
    parser.add_argument("--baseline", default="adam")
    parser.add_argument("--figures", action="store_true", help="also draw heldout-long.png")
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        parser.error(f"--root {args.root!r} is not a folder of long runs")
    print(report(Path(args.root), args.baseline, args.figures))


if __name__ == "__main__":
    main()
