"""sin(a/x) over many seeds: final error per seed and method, on training batches and held out.

One chaotic training run says little (changing the order of float additions moves a seed's
final loss by orders of magnitude), so the sine comparison is a distribution over seeds.
For every method and seed this trains the ``sine`` experiment (``seed`` picks both the initial
weights and the data stream, as ``physgrad compare --seeds``), then records

- ``mean_y_l1`` / ``median_y_l1``: mean and median of the per-batch mean ``|sin(a/x) + 1|``
  over the last ``--window`` training batches (the mean is the paper's running average);
- ``heldout_*``: the trained network's error on a fixed held-out set of ``--heldout-size``
  problems drawn with ``--heldout-seed`` (independent of every training seed): mean and
  median over samples of ``y_l1`` and ``x_dist`` (distance to the nearest solution).

Rows go to ``<results>/<method>_<iterations>.csv`` (one file per method, so two sweeps over
different methods can run side by side; rewritten atomically after every run, so an
interrupted sweep keeps what it finished). Runs live in ``<out>/seed<S>/<method>``; a longer
``--iterations`` continues a finished shorter run from its checkpoint (exact resume, constant
learning rate), so run the short length first. Then ``sine_seeds_report.py`` writes the table
and figure.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods adam,pg-analytic \\
        --seeds 0-19 --iterations 10000
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from pathlib import Path

import torch

from physgrad.experiments import get_experiment
from physgrad.experiments.runner import initial_weights, run_method, trained_network
from physgrad.nets.adapters import network_input
from physgrad.problems.sine import SineProblem
from physgrad.training.checkpoint import atomic_write
from physgrad.training.trainer import History, TrainingDiverged

HELDOUT_SEED = 20_221_000  # far from the training seeds 0..N
FIELDS = (
    "method", "seed", "iterations", "window", "mean_y_l1", "median_y_l1", "median_x_dist",
    "heldout_mean_y_l1", "heldout_median_y_l1", "heldout_mean_x_dist",
    "heldout_median_x_dist", "status", "train_seconds",
)


def parse_seeds(text: str) -> list[int]:
    """``"0-19"`` or ``"5,6,7"`` -> list of ints."""
    if "-" in text and "," not in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def heldout_errors(network: torch.nn.Module, size: int, seed: int) -> dict[str, float]:
    """Mean and median over ``size`` held-out problems of ``y_l1`` and ``x_dist``."""
    problem = SineProblem()
    batch = problem.sample(size, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        x = network(network_input(network, batch))
        m = problem.metrics(x, batch)
    out = {}
    for key in ("y_l1", "x_dist"):
        v = m[key].double()
        out[f"heldout_mean_{key}"] = float(v.mean())
        out[f"heldout_median_{key}"] = float(v.median())
    return out


def final_row(history: History, window: int) -> dict[str, float]:
    """Mean / median of the per-batch metrics over the last ``window`` logged iterations."""
    y = history["y_l1"][-window:]
    d = history["x_dist"][-window:]
    return {
        "mean_y_l1": statistics.fmean(y),
        "median_y_l1": statistics.median(y),
        "median_x_dist": statistics.median(d),
    }


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    rows = sorted(rows, key=lambda r: (str(r["method"]), int(r["seed"])))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            for row in rows:
                w.writerow({k: _fmt(row.get(k, "")) for k in FIELDS})

    atomic_write(path, write)


def _fmt(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default="adam,adam-clip-dp,pg-analytic")
    p.add_argument("--seeds", default="0-19")
    p.add_argument("--iterations", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--heldout-size", type=int, default=4096)
    p.add_argument("--heldout-seed", type=int, default=HELDOUT_SEED)
    p.add_argument("--out", type=Path, default=Path("runs/sine-seeds"))
    p.add_argument("--results", type=Path, default=Path("docs/results/sine-seeds"))
    args = p.parse_args()
    torch.set_num_threads(1)
    experiment = get_experiment("sine")
    args.results.mkdir(parents=True, exist_ok=True)
    for method in args.methods.split(","):
        table = args.results / f"{method}_{args.iterations}.csv"
        for seed in parse_seeds(args.seeds):
            rows = read_rows(table)
            if any(r["method"] == method and int(r["seed"]) == seed for r in rows):
                continue
            out = args.out / f"seed{seed}"
            out.mkdir(parents=True, exist_ok=True)
            init = initial_weights(experiment, seed, out / "init.pt")
            start = time.perf_counter()
            row: dict[str, object] = {"method": method, "seed": seed,
                                      "iterations": args.iterations, "window": args.window}
            try:
                history = run_method(
                    experiment, method, out, iterations=args.iterations,
                    batch_size=args.batch_size, seed=seed, init=init, resume=True,
                    progress=False, checkpoint_every=1000,
                )
                row.update(final_row(history, args.window))
                net = trained_network(experiment, out / method / "checkpoint.pt")
                row.update(heldout_errors(net, args.heldout_size, args.heldout_seed))
                row["status"] = "ok"
            except TrainingDiverged as err:  # recorded, not hidden
                row.update({k: math.nan for k in FIELDS[4:11]})
                row["status"] = f"diverged: {err}".replace(",", ";")[:120]
            row["train_seconds"] = round(time.perf_counter() - start, 1)
            write_rows(table, [*read_rows(table), row])
            print(method, seed, {k: row.get(k) for k in ("mean_y_l1", "heldout_mean_y_l1",
                                                         "status", "train_seconds")},
                  flush=True)


if __name__ == "__main__":
    main()
