"""heat: Adam + PG with the paper's solver (scipy L-BFGS-B, n = 32) against our batched torch
L-BFGS PG and plain Adam, trained interleaved in one process (issue 15 item 4).

The three networks start from the same weights (seed 0) and see the same data stream (seed 0);
each iteration steps every method once, in a rotating order, so load changes on the shared
machine hit all methods alike. Every ``--eval-every`` iterations each network is evaluated on
a held-out batch (seed 999999, the authors' Poisson plot seed, 128 samples):
``x_l1 = Σ|x − x*|`` over cells, mean and standard error over the batch.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_heat_lbfgsb.py \\
        --iters 200 --out docs/results/heat-lbfgsb

Writes ``metrics.csv`` (iteration, method, training x_l1 / y_l2 of the mini-batch, step
time), ``held_out.csv`` (iteration, method, mean and s.e. of the held-out x_l1) and
``summary.json`` (median step time / Adam's, final held-out x_l1, running means over the
last 64 mini-batches) and ``curves.png`` (``--plot-only`` redraws it from the CSVs).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from physgrad.experiments import get_experiment
from physgrad.experiments.pde_figures import TEST_SEED, predict
from physgrad.training import Trainer

METHODS = ("adam", "pg-lbfgs", "pg-lbfgsb")
COLORS = {"adam": "#1f77b4", "pg-lbfgs": "#d62728", "pg-lbfgsb": "#ff7f0e"}  # plots' palette
STYLES = {"adam": "-", "pg-lbfgs": "-", "pg-lbfgsb": "--"}  # the two PG curves nearly overlap


def held_out_x_l1(trainer: Trainer, batch) -> tuple[float, float]:
    """Mean and standard error of ``x_l1`` of ``trainer``'s network on ``batch``."""
    trainer.network.eval()
    x = predict(trainer.problem, trainer.network, batch)
    errors = trainer.problem.metrics(x, batch)["x_l1"].double()
    return float(errors.mean()), float(errors.std() / math.sqrt(len(errors)))


def plot(out: Path, window: int) -> Path:
    """``out/curves.png`` from ``out/metrics.csv`` and ``out/held_out.csv``: training x_l1
    (running mean over ``window`` mini-batches) and held-out x_l1 ± s.e., log y."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from physgrad.training.smoothing import running_mean

    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    held = list(csv.DictReader((out / "held_out.csv").read_text().splitlines()))
    labels = {m: get_experiment("heat").methods[m].label for m in METHODS}
    fig = Figure(figsize=(10.5, 4.0), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for m in METHODS:
        it = [int(r["iteration"]) for r in rows if r["method"] == m]
        x = [float(r["x_l1"]) for r in rows if r["method"] == m]
        ax1.plot(it, running_mean(x, window), color=COLORS[m], ls=STYLES[m], lw=1.6,
                 label=labels[m])
        h = [r for r in held if r["method"] == m]
        ax2.errorbar([int(r["iteration"]) for r in h], [float(r["x_l1"]) for r in h],
                     yerr=[float(r["x_l1_se"]) for r in h], color=COLORS[m], ls=STYLES[m],
                     marker="o", ms=3, lw=1.2, capsize=2, label=labels[m])
    ax1.set_ylabel(f"training $\\|x - x^*\\|_1$ (running mean, {window})")
    ax2.set_ylabel("held-out $\\|x - x^*\\|_1$ (128 examples, mean ± s.e.)")
    for ax in (ax1, ax2):
        ax.set_yscale("log")
        ax.set_xlabel("training iteration")
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle("heat: Adam vs Adam + PG with torch L-BFGS and with scipy L-BFGS-B (n = 32), "
                 "trained interleaved from the same weights and data", fontsize=10)
    fig.savefig(out / "curves.png", dpi=100)
    return out / "curves.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--batch", type=int, default=None, help="default: heat's cpu scale")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--test-batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot-only", action="store_true", help="redraw curves.png")
    args = parser.parse_args()
    if args.plot_only:
        print(plot(args.out, get_experiment("heat").smoothing))
        return

    exp = get_experiment("heat")
    batch_size = args.batch or exp.scale("cpu").batch_size
    torch.manual_seed(args.seed)
    init = exp.network().state_dict()
    trainers = {}
    for method in METHODS:
        spec = exp.methods[method]
        net = exp.network()
        net.load_state_dict(init)
        trainers[method] = Trainer(exp.problem(), net, spec.method(), spec.optimizer,
                                   batch_size=batch_size, seed=args.seed, progress=False)
    test = exp.problem().sample(args.test_batch, torch.Generator().manual_seed(TEST_SEED))

    args.out.mkdir(parents=True, exist_ok=True)
    rows, held = [], []
    start = time.time()
    for it in range(args.iters + 1):
        if it % args.eval_every == 0 or it == args.iters:
            for method, trainer in trainers.items():
                mean, se = held_out_x_l1(trainer, test)
                held.append({"iteration": it, "method": method, "x_l1": mean, "x_l1_se": se})
            line = ", ".join(f"{h['method']} {h['x_l1']:.1f}" for h in held[-len(trainers):])
            print(f"[{time.time() - start:7.0f} s] iteration {it}: held-out x_l1 {line}",
                  flush=True)
        if it == args.iters:
            break
        order = METHODS[it % 3:] + METHODS[: it % 3]  # rotate who goes first
        for method in order:
            row = trainers[method].step()
            rows.append({"iteration": it, "method": method, "x_l1": row["x_l1"],
                         "y_l2": row["y_l2"], "step_time": row["step_time"]})

    with open(args.out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)
    with open(args.out / "held_out.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(held[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in held)

    times = {m: statistics.median(r["step_time"] for r in rows if r["method"] == m)
             for m in METHODS}
    window = exp.smoothing
    train_final = {m: statistics.mean([r["x_l1"] for r in rows if r["method"] == m][-window:])
                   for m in METHODS}
    final_held = {h["method"]: h for h in held if h["iteration"] == args.iters}
    summary = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_heat_lbfgsb.py "
                   f"--iters {args.iters} --batch {batch_size} --eval-every {args.eval_every} "
                   f"--test-batch {args.test_batch} --seed {args.seed} --out {args.out}",
        "iterations": args.iters, "batch_size": batch_size, "seed": args.seed,
        "test_seed": TEST_SEED, "test_batch": args.test_batch,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(), "wall_s": round(time.time() - start),
        "median_step_ms": {m: 1e3 * t for m, t in times.items()},
        "step_time_over_adam": {m: t / times["adam"] for m, t in times.items()},
        f"train_x_l1_last_{window}": train_final,
        "held_out_final": {m: {"x_l1": h["x_l1"], "se": h["x_l1_se"]}
                           for m, h in final_held.items()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    plot(args.out, window)


if __name__ == "__main__":
    main()
