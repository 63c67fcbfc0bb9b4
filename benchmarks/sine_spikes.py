"""What is a late spike in a sin(a/x) learning curve? Per-sample held-out errors around it.

Trains one ``sine`` method for one seed (as ``physgrad compare``: seed = weights and data) and
after every iteration evaluates the network on a fixed held-out set (``--heldout`` problems,
seed 20221000). A spike is an iteration in the second half of training where the held-out
mean ``|sin(a/x)+1|`` exceeds 10× its median over the preceding 200 iterations; consecutive
spike iterations form one event, described at its peak ``t*`` against ``t0`` = 20 iterations
before the event began:

- ``frac_up_2x`` / ``frac_up_10x``: fraction of held-out samples whose own error at ``t*`` is
  at least 2× / 10× their error at ``t0`` (all samples growing together -> near 1);
- ``frac_switched``: fraction whose nearest solution (index ``n`` of ``x* = a/(3π/2+2πn)``)
  differs between ``t0`` and 200 iterations after the peak (samples hopping to another
  minimum -> large);
- ``frac_of_excess_top1pct``: share of the error increase carried by the 1% of samples that
  grew most (a few samples jumping -> near 1; the whole network moving -> small).

Writes ``<out>/spikes_<method>_seed<S>.json`` and ``.png`` (held-out mean over the second
half with the events marked, and the 10/50/90 % quantiles of the per-sample error around the
largest event).

    OMP_NUM_THREADS=1 python benchmarks/sine_spikes.py --method adam --seed 9
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from physgrad.experiments import get_experiment
from physgrad.nets.adapters import network_input
from physgrad.problems.sine import nearest_minimum
from physgrad.training import Trainer
from physgrad.training.checkpoint import atomic_write

HELDOUT_SEED = 20_221_000


def minimum_index(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Index ``n`` of the solution nearest to ``x`` (``x* = a / (3π/2 + 2πn)``)."""
    xs = nearest_minimum(x, a)
    return torch.round((a / xs - 1.5 * math.pi) / (2 * math.pi))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="adam")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--iterations", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--heldout", type=int, default=512)
    p.add_argument("--out", type=Path, default=Path("docs/results/sine-spikes"))
    args = p.parse_args()
    torch.set_num_threads(1)
    exp = get_experiment("sine")
    problem = exp.problem()
    spec = exp.methods[args.method]
    torch.manual_seed(args.seed)  # the same initial weights as physgrad compare --seeds
    trainer = Trainer(problem, exp.network(), spec.method(), spec.optimizer,
                      batch_size=args.batch_size, seed=args.seed, progress=False)
    held = problem.sample(args.heldout, torch.Generator().manual_seed(HELDOUT_SEED))
    inputs = network_input(trainer.network, held)
    errors = np.empty((args.iterations, args.heldout), dtype=np.float64)
    index = np.empty((args.iterations, args.heldout), dtype=np.float64)
    for it in range(args.iterations):
        trainer.step()
        with torch.no_grad():
            x = trainer.network(inputs)
            errors[it] = problem.metrics(x, held)["y_l1"].numpy()
            index[it] = minimum_index(x.double(), held.condition).reshape(-1).numpy()
    mean = errors.mean(axis=1)
    half = args.iterations // 2
    spike = np.zeros(args.iterations, dtype=bool)
    for t in range(half, args.iterations):
        spike[t] = mean[t] > 10 * np.median(mean[t - 200 : t])
    events = []
    t = half
    while t < args.iterations:
        if not spike[t]:
            t += 1
            continue
        start = t
        while t < args.iterations and spike[t]:
            t += 1
        peak = start + int(np.argmax(mean[start:t]))
        t0, after = start - 20, min(peak + 200, args.iterations - 1)
        growth = errors[peak] / np.maximum(errors[t0], 1e-300)
        excess = np.clip(errors[peak] - errors[t0], 0, None)
        top = np.sort(excess)[::-1][: max(1, args.heldout // 100)]
        events.append({
            "start": start, "peak": peak, "end": t, "t0": t0,
            "mean_t0": float(mean[t0]), "mean_peak": float(mean[peak]),
            "frac_up_2x": float((growth >= 2).mean()),
            "frac_up_10x": float((growth >= 10).mean()),
            "frac_switched": float((index[after] != index[t0]).mean()),
            "frac_of_excess_top1pct": float(top.sum() / max(excess.sum(), 1e-300)),
        })
    summary = {
        "method": args.method, "seed": args.seed, "iterations": args.iterations,
        "batch_size": args.batch_size, "heldout": args.heldout, "heldout_seed": HELDOUT_SEED,
        "events": events,
        "median_over_events": {
            k: float(np.median([e[k] for e in events])) if events else None
            for k in ("frac_up_2x", "frac_up_10x", "frac_switched", "frac_of_excess_top1pct")
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"spikes_{args.method}_seed{args.seed}"
    text = json.dumps(summary, indent=1)
    atomic_write(stem.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))

    fig = Figure(figsize=(10, 3.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    its = np.arange(1, args.iterations + 1)
    ax1.semilogy(its[half:], mean[half:], lw=0.7, color="#1f77b4")
    for e in events:
        ax1.axvline(e["peak"] + 1, color="#d62728", lw=0.6, alpha=0.6)
    ax1.set_xlabel("training iteration")
    ax1.set_ylabel("held-out mean |sin(a/x)+1|")
    ax1.set_title(f"{args.method}, seed {args.seed}: {len(events)} spike events (red)",
                  fontsize=9)
    if events:
        big = max(events, key=lambda e: e["mean_peak"] / e["mean_t0"])
        lo, hi = max(big["t0"] - 30, 0), min(big["peak"] + 60, args.iterations)
        q = np.percentile(errors[lo:hi], [10, 50, 90], axis=1)
        for qq, name, color in zip(q, ("10%", "median", "90%"), ("#2ca02c", "k", "#ff7f0e"),
                                   strict=True):
            ax2.semilogy(its[lo:hi], qq, color=color, label=f"{name} of samples")
        ax2.semilogy(its[lo:hi], mean[lo:hi], color="#1f77b4", ls="--", label="mean")
        ax2.axvline(big["peak"] + 1, color="#d62728", lw=0.6)
        ax2.set_title(f"largest event: {big['frac_up_2x']:.0%} of samples' errors ≥2× up, "
                      f"{big['frac_switched']:.1%} changed minimum", fontsize=9)
        ax2.set_xlabel("training iteration")
        ax2.legend(fontsize=7)
    atomic_write(stem.with_suffix(".png"), lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    print(json.dumps(summary["median_over_events"]), len(events), "events")


if __name__ == "__main__":
    main()
