"""Where the long runs stand: held-out error per method and seed, and PG's catch-up.

Reads ``<root>/<experiment>/seed<S>/<method>/heldout.csv`` (the long-run folders of
docs/long-runs.md, finished or not) and prints, per experiment, a markdown table of the
held-out headline metric at fixed iterations, and for each PG method and each N the first
evaluated iteration at which it is at or below the baseline's error at iteration N (the
paper's "iterations to reach Adam's accuracy at 10k"). Runs still in progress are read as
far as they have been checkpointed.

    python benchmarks/long_runs_table.py [--root docs/results/long] [--metric NAME]

The metric defaults to each experiment's headline metric (``x_l1`` for heat/Poisson,
``v0_err`` for fluid).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from physgrad.experiments import get_experiment

CHECKPOINTS = (100, 500, 1000, 2000, 3000, 5000, 10000)


def read(path: Path, metric: str) -> dict[int, float]:
    with open(path, newline="") as fh:
        return {int(float(r["iteration"])): float(r[metric]) for r in csv.DictReader(fh)}


def reach(scores: dict[int, float], level: float) -> int | None:
    return next((it for it in sorted(scores) if scores[it] <= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="docs/results/long")
    parser.add_argument("--metric", help="default: the experiment's headline metric")
    parser.add_argument("--baseline", default="adam")
    args = parser.parse_args()
    for exp_dir in sorted(p for p in Path(args.root).iterdir() if p.is_dir()):
        exp = get_experiment(exp_dir.name)
        metric = args.metric or exp.metrics[0]
        runs = {}
        for path in sorted(exp_dir.glob("seed*/*/heldout.csv")):
            runs[(path.parent.parent.name, path.parent.name)] = read(path, metric)
        if not runs:
            continue
        print(f"\n### {exp_dir.name}: held-out {metric} ({exp.heldout} fixed problems, "
              "network in eval mode)\n")
        print("| seed | method | last iteration | " + " | ".join(f"@{n:,}" for n in CHECKPOINTS)
              + " |")
        print("|---|---|---|" + "---|" * len(CHECKPOINTS))
        for (seed, method), scores in runs.items():
            cells = [f"{scores[n]:.4g}" if n in scores else "" for n in CHECKPOINTS]
            print(f"| {seed} | {method} | {max(scores):,} | " + " | ".join(cells) + " |")
        print(f"\nIterations a method needs to reach {args.baseline}'s held-out {metric} at "
              "iteration N (same seed; blank: the baseline has not reached N yet):\n")
        print("| seed | method | " + " | ".join(f"N = {n:,}" for n in CHECKPOINTS) + " |")
        print("|---|---|" + "---|" * len(CHECKPOINTS))
        for (seed, method), scores in runs.items():
            base = runs.get((seed, args.baseline))
            if method == args.baseline or base is None:
                continue
            cells = []
            for n in CHECKPOINTS:
                if n not in base:
                    cells.append("")
                    continue
                hit = reach(scores, base[n])
                cells.append(f"{hit:,}" if hit is not None else f"not within {max(scores):,}")
            print(f"| {seed} | {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
