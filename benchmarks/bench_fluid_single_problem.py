"""Fluid single problems at the paper's length: GD (eta = 1) for up to 20k iterations vs the
iterated reverse-simulation estimator (paper Sec. 3.4, Fig. 6b and Table 1: GD "> 20k
iterations", the estimator 7 iterations).

Usage: ``python benchmarks/bench_fluid_single_problem.py [--gd-iter 20000] [--estimator-iter 100]
[--examples 4] [--out runs/fluid-single]``. Both start at the drift guess on the same
``examples`` problems (seed 0, float32). Writes ``fig6b_single_problem.png`` / ``.json`` into
``--out`` and prints, for levels the estimator reaches, the iterations and time GD needs for
them (or that it does not within ``--gd-iter``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from physgrad.experiments.base import Result
from physgrad.experiments.fluid_figures import single_problem_fluid
from physgrad.report.figures import render


def first_at_or_below(curve: list[float], level: float) -> int | None:
    """First index where ``curve`` is <= ``level`` (None if never)."""
    return next((i for i, v in enumerate(curve) if v <= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gd-iter", type=int, default=20_000)
    parser.add_argument("--estimator-iter", type=int, default=100)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/fluid-single")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = single_problem_fluid(
        args.estimator_iter,
        out / "fig6b_single_problem.png",
        examples=args.examples,
        gd_iter=args.gd_iter,
    )
    seconds = result["seconds"]
    per_iter = {name: seconds[name] / result["iterations"][name] for name in seconds}
    print(f"{args.examples} problems, start (drift guess): objective "
          f"{result['objective']['GD'][0]:.4g}, v0_err {result['v0_err']['GD'][0]:.4g}, "
          f"v0_l1 {result['v0_l1']['GD'][0]:.4g}")
    print(f"time per iteration (all {args.examples} problems): "
          + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in per_iter.items()))
    print("\n| metric | estimator after k it. | level | GD iterations to reach it | GD time |")
    print("|---|---|---|---|---|")
    for metric in ("objective", "v0_err", "v0_l1"):
        estimator, gd = result[metric]["Reverse sim."], result[metric]["GD"]
        for k in (1, 3, 7, args.estimator_iter):
            level = estimator[min(k, len(estimator) - 1)]
            hit = first_at_or_below(gd, level)
            reach = f"{hit}" if hit is not None else f"not within {len(gd) - 1}"
            cost = f"{hit * per_iter['GD']:.0f} s" if hit is not None else "–"
            print(f"| {metric} | {k} | {level:.4g} | {reach} | {cost} |")
    print(f"\nGD after {len(result['objective']['GD']) - 1}: objective "
          f"{result['objective']['GD'][-1]:.4g}, v0_err {result['v0_err']['GD'][-1]:.4g}, "
          f"v0_l1 {result['v0_l1']['GD'][-1]:.4g}")
    render(Result(figures={result["path"].name: result["figure"]}), out)
    print(f"wrote {result['path']}")


if __name__ == "__main__":
    main()
