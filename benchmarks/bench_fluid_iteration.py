"""Time a full fluid training iteration against its network bound, for several versions of the code.

Usage: ``python benchmarks/bench_fluid_iteration.py [--batches 8,64] [--rounds 5] [--threads 1]
[--configurations previous,torch,kernel]``.

For each batch size and each method of the ``fluid`` experiment (``adam``: backprop through the
8-step simulator; ``pg-reverse-sim``: the authors' estimator) one :class:`~physgrad.training.
Trainer` step is timed (process CPU time: data generation, prediction, loss, backward,
optimizer step and the logged metrics), next to the *network bound*: the same U-Net's forward,
backward and Adam step alone on the same batch. The configurations run interleaved round by
round in this one process, so load changes hit all alike:

* ``original``: the advection before the first speed-up (four ``gather`` calls per bilinear
  sample and a ``torch.where`` limiter, kept as ``advection._advect_own_grid_gather``),
  metrics that simulate the prediction again, no batch chunks;
* ``previous``: the advection composed of autograd ops around ``grid_sample``
  (``fluid_previous.py``, a frozen copy), metrics reusing the training step's simulation, no
  batch chunks;
* ``torch``: the current code with ``PHYSGRAD_NO_KERNEL=1`` (in-place torch fast advection
  with its hand-written backward, CPU batch chunks that fit the L2 cache, two-roll face
  means; ``now`` before the fused kernel);
* ``kernel``: the current code as it runs by default on a CPU: the fused C advection kernel
  (``physics/fluid/advection_kernel.c``, bitwise the same results as ``torch``).

Everything else (pressure solve, data generator, network) is the current code in all of them.
Prints the median over rounds of seconds per iteration, the ratio to the network bound and
the last two configurations' ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import fluid_previous
import torch

from physgrad.experiments import get_experiment
from physgrad.nets.adapters import network_input
from physgrad.physics.fluid import kernel
from physgrad.problems.fluid import FluidProblem
from physgrad.training.trainer import Trainer

advection = sys.modules["physgrad.physics.fluid.advection"]
simulate = sys.modules["physgrad.physics.fluid.simulate"]


class _NoCache:
    """A forward cache that never hits: the metrics simulate again, as originally."""

    def remember(self, *args: object) -> None:
        pass

    def recall(self, *args: object) -> None:
        return None


CONFIGURATIONS = ("original", "previous", "torch", "kernel")


@contextmanager
def configuration(name: str, problem: FluidProblem) -> Iterator[None]:
    """Run the ``original``, ``previous``, ``torch`` or ``kernel`` code path inside the block."""
    saved = (
        advection._advect_own_grid, advection._face_components, simulate.CACHE_CHUNK_BYTES,
        problem._forward_cache,
    )
    saved_switch = os.environ.get(kernel.DISABLE_VARIABLE)
    if name != "kernel":
        os.environ[kernel.DISABLE_VARIABLE] = "1"
    if name in ("original", "previous"):
        simulate.CACHE_CHUNK_BYTES = 1 << 62
        advection._face_components = fluid_previous.face_components
        advection._advect_own_grid = (
            advection._advect_own_grid_gather if name == "original"
            else fluid_previous.advect_own_grid
        )
    if name == "original":
        problem._forward_cache = _NoCache()  # type: ignore[assignment]
    try:
        yield
    finally:
        (advection._advect_own_grid, advection._face_components, simulate.CACHE_CHUNK_BYTES,
         problem._forward_cache) = saved
        if saved_switch is None:
            os.environ.pop(kernel.DISABLE_VARIABLE, None)
        else:
            os.environ[kernel.DISABLE_VARIABLE] = saved_switch


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configurations", default="previous,torch,kernel",
                        help=f"comma-separated, from {','.join(CONFIGURATIONS)}")
    args = parser.parse_args()
    configurations = args.configurations.split(",")
    unknown = sorted(set(configurations) - set(CONFIGURATIONS))
    if unknown or len(configurations) < 2:
        parser.error(f"--configurations: at least two of {CONFIGURATIONS}, got {configurations}")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), cpus={os.cpu_count()}, "
          f"load1={load:.2f}, rounds={args.rounds}")
    print(kernel.kernel_status())
    exp = get_experiment("fluid")
    last, before = configurations[-1], configurations[-2]
    print("| batch | method | " + " | ".join(f"{c}: s / it. (/ bound)" for c in configurations)
          + f" | {last} / {before} | network bound: s |")
    print("|---|---|" + "---|" * len(configurations) + "---|---|")
    for batch_size in (int(b) for b in args.batches.split(",")):
        problem = exp.problem()
        assert isinstance(problem, FluidProblem)
        trainers = {
            (config, method): Trainer(
                problem, exp.network(), spec.method(), spec.optimizer,
                batch_size=batch_size, seed=0, progress=False,
            )
            for config in configurations
            for method, spec in exp.methods.items()
        }
        net = exp.network()
        optimizer = torch.optim.Adam(net.parameters(), lr=0.005)
        inputs = network_input(net, problem.sample(batch_size, torch.Generator()))

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
            medians = [statistics.median(times[(c, method)]) for c in configurations]
            cells = " | ".join(f"{m:.3f} ({m / bound:.2f}x)" for m in medians)
            print(f"| {batch_size} | {method} | {cells} | {medians[-1] / medians[-2]:.2f} | "
                  f"{bound:.3f} |", flush=True)
    print(f"load1 at the end: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
