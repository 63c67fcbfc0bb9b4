"""Time per training iteration of every `sine` method, as ratios to Adam (paper Fig. 14).

Each iteration = data generation + forward + physical gradient + backward + Adam step, the
same span the paper timed. Methods are measured interleaved (round-robin blocks of steps) so
that load changes on a shared machine hit all of them alike; the median block is reported.

    python benchmarks/bench_sine_step.py [--batch 1000] [--rounds 7] [--steps 40]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from physgrad.experiments import get_experiment
from physgrad.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    exp = get_experiment("sine")
    trainers = {}
    for name, spec in exp.methods.items():
        torch.manual_seed(0)
        trainers[name] = Trainer(exp.problem(), exp.network(), spec.method(), spec.optimizer,
                                 batch_size=args.batch, progress=False)
        for _ in range(10):  # warm-up (torch.func tracing, allocator)
            trainers[name].step()
    blocks: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.step()
            blocks[name].append((time.perf_counter() - start) / args.steps)
    adam = statistics.median(blocks["adam"])
    print(f"# sine: time per training iteration, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}, {args.rounds} rounds x "
          f"{args.steps} steps (median block; includes metric logging)")
    print("| method | ms / iteration | ratio to Adam |")
    print("|---|---|---|")
    for name, values in blocks.items():
        med = statistics.median(values)
        print(f"| {name} | {1e3 * med:.2f} | {med / adam:.2f} |")


if __name__ == "__main__":
    main()
