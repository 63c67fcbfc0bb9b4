"""Half-inverse gradients (HIG) vs Adam and Adam + PG on ``sine``: accuracy and time per step.

Every method of a seed starts from the same weights (``torch.manual_seed(seed)`` then the
experiment's network, as ``physgrad compare`` does) and sees the same data stream (Trainer
seed = ``seed``). The methods are trained interleaved, in round-robin blocks of ``--block``
iterations, so that load changes on a shared machine hit all of them alike; the time per
iteration is the median block (data generation + forward + update + optimizer step + metric
logging, the span of ``benchmarks/bench_sine_step.py``). Methods:

- ``adam``: the sine experiment's Adam (the paper's B.2 baseline: L1 loss, dL/dx clamped to
  [-1, 1]), lr 2e-3. BENCHMARKS.md's HIG table predates it: it was measured against the
  former ``adam``, today's ``adam-clip-dp``;
- ``pg-analytic``: Adam + physical gradients from the nearest-minimum inverse, lr 2e-3;
- ``hig-eta<η>``: :class:`~physgrad.training.hig.HalfInverse` (batch-mean loss, truncation
  ``--truncation``) applied by SGD with lr 1.

Final values are the mean and median over the last ``--window`` mini-batches; "iters to
Adam's final" is the first iteration where the running mean of y_l1 over ``--reach-window``
mini-batches is at or below Adam's final mean y_l1, and "s to Adam's final" that many
iterations times the method's time per iteration. The script also states why HIG is not run
on ``heat``.

    python benchmarks/bench_hig.py [--iters 3000] [--batch 1000] [--seeds 5] [--etas 100]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from physgrad.experiments import get_experiment
from physgrad.experiments.runner import iterations_to_reach
from physgrad.training import Trainer, TrainingDiverged
from physgrad.training.hig import HalfInverse

Row = dict[str, float]


def build_trainers(
    seed: int, batch: int, etas: list[float], truncation: float
) -> dict[str, Trainer]:
    """One Trainer per method, all from the same initial weights and data seed."""
    exp = get_experiment("sine")
    torch.manual_seed(seed)
    init = exp.network().state_dict()

    def network() -> nn.Module:
        net = exp.network()
        net.load_state_dict(init)
        return net

    trainers: dict[str, Trainer] = {}
    for name in ("adam", "pg-analytic"):
        spec = exp.methods[name]
        trainers[name] = Trainer(exp.problem(), network(), spec.method(), spec.optimizer,
                                 batch_size=batch, seed=seed, progress=False)
    for eta in etas:
        net = network()
        hig = HalfInverse(eta=eta, truncation=truncation, limit=None).bind(net)
        sgd: Callable = lambda p: torch.optim.SGD(p, lr=1.0)  # noqa: E731
        trainers[f"hig-eta{eta:g}"] = Trainer(exp.problem(), net, hig, sgd, batch_size=batch,
                                              seed=seed, progress=False)
    return trainers


def run_interleaved(
    trainers: dict[str, Trainer], iters: int, block: int
) -> tuple[dict[str, list[Row]], dict[str, list[float]], dict[str, str]]:
    """Train all methods in round-robin blocks; returns rows, per-block s/iteration, failures."""
    rows: dict[str, list[Row]] = {name: [] for name in trainers}
    blocks: dict[str, list[float]] = {name: [] for name in trainers}
    failed: dict[str, str] = {}
    done = 0
    while done < iters:
        steps = min(block, iters - done)
        for name, trainer in trainers.items():
            if name in failed:
                continue
            start = time.perf_counter()
            try:
                for _ in range(steps):
                    rows[name].append(trainer.step())
            except TrainingDiverged as exc:
                failed[name] = str(exc)
                continue
            blocks[name].append((time.perf_counter() - start) / steps)
        done += steps
    return rows, blocks, failed


def heat_note() -> str:
    """Why HIG is not run on ``heat``: BatchNorm, and the size of the stacked Jacobian."""
    exp = get_experiment("heat")
    net = exp.network()
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    try:
        HalfInverse().bind(net)
        refusal = "accepted"
    except ValueError as exc:
        refusal = str(exc).split(":")[0]
    dy = 64 * 64
    lines = [f"heat: HIG not run. {refusal}."]
    for b in (exp.scale("cpu").batch_size, exp.scale("paper").batch_size):
        gib = b * dy * n_params * 4 / 2**30
        lines.append(f"  batch {b}: J would be ({b * dy}, {n_params}) float32 = {gib:.1f} GiB, "
                     f"SVD ~{b * dy * n_params * min(b * dy, n_params):.1e} flops")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seeds", default="5", help="comma-separated, e.g. 5,6")
    parser.add_argument("--etas", default="100", help="HIG step sizes, comma-separated")
    parser.add_argument("--truncation", type=float, default=1e-6)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--reach-window", type=int, default=100)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    etas = [float(e) for e in args.etas.split(",")]

    print(f"# sine: HIG vs Adam vs Adam + PG; {args.iters} iterations, batch {args.batch}, "
          f"HIG truncation {args.truncation:g}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {platform.machine()}; interleaved blocks of "
          f"{args.block}; finals over the last {args.window} mini-batches")
    print("| seed | method | mean y_l1 | median y_l1 | mean x_dist | median x_dist "
          "| iters to Adam's final y_l1 | s to Adam's final | ms / iteration | ratio to Adam |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        trainers = build_trainers(seed, args.batch, etas, args.truncation)
        rows, blocks, failed = run_interleaved(trainers, args.iters, args.block)
        adam_time = statistics.median(blocks["adam"])
        adam_final = statistics.fmean(r["y_l1"] for r in rows["adam"][-args.window:])
        for name in trainers:
            tail = rows[name][-args.window:]
            y_l1 = [r["y_l1"] for r in tail]
            x_dist = [r["x_dist"] for r in tail]
            reach = iterations_to_reach(
                [r["y_l1"] for r in rows[name]], adam_final, args.reach_window
            )
            ms = 1e3 * statistics.median(blocks[name]) if blocks[name] else math.nan
            reach_s = f"{reach * ms / 1e3:.1f}" if reach is not None else "never"
            status = f" (diverged at {len(rows[name])})" if name in failed else ""
            print(f"| {seed} | {name}{status} | {statistics.fmean(y_l1):.2e} | "
                  f"{statistics.median(y_l1):.2e} | {statistics.fmean(x_dist):.2e} | "
                  f"{statistics.median(x_dist):.2e} | {reach if reach is not None else 'never'} "
                  f"| {reach_s} | {ms:.1f} | {ms / (1e3 * adam_time):.2f} |", flush=True)
        for name, trainer in trainers.items():
            if isinstance(trainer.method, HalfInverse):
                info = trainer.method.last_info
                print(f"#   seed {seed} {name}: last update kept {info['rank']:.0f} of "
                      f"{min(info['rows'], info['params']):.0f} singular values, "
                      f"s_max {info['s_max']:.3g}")
    print(heat_note())


if __name__ == "__main__":
    main()
