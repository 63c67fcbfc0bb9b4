"""How much a trained network's held-out score depends on its batch-norm statistics.

For each trainer checkpoint, scores the network on its experiment's held-out problems three
ways: eval mode with the running statistics kept during training (momentum 0.1), train mode
(statistics of each 64-problem held-out chunk), and eval mode after re-estimating the
statistics on calibration problems from the training distribution
(:func:`physgrad.training.evaluation.with_precise_batchnorm`, what the Trainer's held-out
evaluation uses). Prints a markdown table.

    OMP_NUM_THREADS=1 python benchmarks/batchnorm_gap.py CHECKPOINT [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from physgrad.experiments import get_experiment
from physgrad.experiments.runner import trained_network
from physgrad.training.checkpoint import load_checkpoint
from physgrad.training.evaluation import (
    CALIBRATION_SEED,
    evaluate,
    heldout_batch,
    with_precise_batchnorm,
)


def scores(path: Path) -> dict[str, object]:
    meta = load_checkpoint(path)
    exp = get_experiment(meta["experiment"])
    problem = exp.problem()  # type: ignore[misc]
    network = trained_network(exp, path)
    heldout = heldout_batch(problem, exp.heldout)
    metric = exp.metrics[0]

    def score(net: torch.nn.Module) -> float:
        return evaluate(problem, net, heldout)[metric]  # the experiment's net takes the batch

    calibration = heldout_batch(problem, exp.heldout, CALIBRATION_SEED)
    return {
        "run": f"{meta['experiment']} seed {meta['seed']} {meta['method']}",
        "iteration": meta["iteration"],
        "metric": metric,
        "eval (running stats)": score(network.eval()),
        "train mode (held-out chunk stats)": score(copy.deepcopy(network).train()),
        "eval, re-estimated stats": score(
            with_precise_batchnorm(network, lambda batch: batch, calibration)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [scores(p) for p in args.checkpoints]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " | running / re-estimated |")
    print("|" + "---|" * (len(keys) + 1))
    for r in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else
                 str(v) for v in r.values()]
        ratio = r["eval (running stats)"] / r["eval, re-estimated stats"]  # type: ignore[operator]
        print("| " + " | ".join(cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
