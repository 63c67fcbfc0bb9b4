"""Time a full fluid training iteration against its network bound, before and after the speed-ups.

Usage: ``python benchmarks/bench_fluid_iteration.py [--batches 8,64] [--rounds 3] [--threads 1]``.

For each batch size and each method of the ``fluid`` experiment (``adam``: backprop through the
8-step simulator; ``pg-reverse-sim``: the authors' estimator) one :class:`~physgrad.training.
Trainer` step is timed (process CPU time: data generation, prediction, loss, backward,
optimizer step and the logged metrics), next to the *network bound*: the same U-Net's forward,
backward and Adam step alone on the same batch. Two configurations run interleaved round by
round in this one process, so load changes hit both alike:

* ``before``: the previous advection (four ``gather`` calls per bilinear sample and a
  ``torch.where`` limiter, kept as ``advection._advect_own_grid_gather`` for forward-mode AD)
  and metrics that simulate the prediction again;
* ``after``: the current code (``grid_sample`` interpolation, ``where``-free limiter,
  metrics reusing the training step's forward simulation).

Everything else (grid operators, pressure solve, data) is the current code in both, so the
ratio isolates these changes. Prints the median over rounds of seconds per iteration and the
ratio to the network bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

import physgrad.physics.fluid.advection as advection
from physgrad.experiments import get_experiment
from physgrad.problems.fluid import FluidProblem
from physgrad.training.trainer import Trainer


class _NoCache:
    """A forward cache that never hits: the metrics simulate again, as before."""

    def remember(self, *args: object) -> None:
        pass

    def recall(self, *args: object) -> None:
        return None


@contextmanager
def configuration(name: str, problem: FluidProblem) -> Iterator[None]:
    """Run the ``before`` or ``after`` code path inside the block."""
    current, cache = advection._advect_own_grid, problem._forward_cache
    if name == "before":
        advection._advect_own_grid = advection._advect_own_grid_gather
        problem._forward_cache = _NoCache()  # type: ignore[assignment]
    try:
        yield
    finally:
        advection._advect_own_grid = current
        problem._forward_cache = cache


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), cpus={os.cpu_count()}, "
          f"load1={load:.2f}, rounds={args.rounds}")
    exp = get_experiment("fluid")
    print("| batch | method | before: s / it. | before / bound | after: s / it. | after / bound "
          "| network bound: s |")
    print("|---|---|---|---|---|---|---|")
    for batch_size in (int(b) for b in args.batches.split(",")):
        problem = exp.problem()
        assert isinstance(problem, FluidProblem)
        trainers = {
            (config, method): Trainer(
                problem, exp.network(), spec.method(), spec.optimizer,
                batch_size=batch_size, seed=0, progress=False,
            )
            for config in ("before", "after")
            for method, spec in exp.methods.items()
        }
        net = exp.network()
        optimizer = torch.optim.Adam(net.parameters(), lr=0.005)
        inputs = problem.network_input(problem.sample(batch_size, torch.Generator()))

        def network_step(
            net: torch.nn.Module = net,
            optimizer: torch.optim.Optimizer = optimizer,
            inputs: torch.Tensor = inputs,
        ) -> None:
            optimizer.zero_grad(set_to_none=True)
            (net(inputs) ** 2).mean().backward()
            optimizer.step()

        times: dict[object, list[float]] = {key: [] for key in (*trainers, "bound")}
        for key, trainer in trainers.items():  # warm-up
            with configuration(key[0], problem):
                trainer.step()
        network_step()
        for _ in range(args.rounds):
            for key, trainer in trainers.items():
                with configuration(key[0], problem):
                    times[key].append(cpu_seconds(trainer.step))
            times["bound"].append(cpu_seconds(network_step))
        bound = statistics.median(times["bound"])
        for method in exp.methods:
            before = statistics.median(times[("before", method)])
            after = statistics.median(times[("after", method)])
            print(f"| {batch_size} | {method} | {before:.3f} | {before / bound:.2f}x | "
                  f"{after:.3f} | {after / bound:.2f}x | {bound:.3f} |")


if __name__ == "__main__":
    main()
