"""Where a fluid training iteration spends its time: each phase's CPU time against the network.

Usage: ``python benchmarks/bench_fluid_phases.py [--batches 8,64] [--rounds 5] [--threads 1]``.

Times, for one batch of the ``fluid`` experiment, each piece a training iteration is made of
(process CPU time, median over rounds, the phases interleaved round by round):

* ``network bound``: the U-Net's forward, backward and Adam step (as
  ``bench_fluid_iteration.py``);
* ``data: initial state`` and ``data: ground-truth run``: the authors' data generator
  (markers, noise, the centred 8-step simulation), both parts of ``FluidProblem.sample``;
* ``physics forward (graph)`` and ``physics forward + backward``: the 8-step training
  simulator ``v0 -> marker_T`` with the frequency loss, as the ``adam`` method runs it;
* ``simulation, no gradients``: the same simulation without autograd;
* ``reverse-sim estimator``: the ``pg-reverse-sim`` solver (a recorded forward run and an
  8-step reverse run);
* ``metrics (no cached run)``: ``FluidProblem.metrics`` when it has to simulate.

An ``adam`` iteration is about bound + data + physics forward + backward (+ a few ms of
trainer bookkeeping); a ``pg-reverse-sim`` iteration about bound + data + estimator.

A second table splits one step of the training simulator (staggered grid, FFT projection)
into its parts, without gradients and with forward + backward (the sum of ``(x ** 2).sum()``
of the outputs as the loss).

Advection runs the default path: the fused CPU kernel where it is available
(``physgrad.physics.fluid.kernel_status()``), the torch path with ``PHYSGRAD_NO_KERNEL=1``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

from physgrad.experiments import get_experiment
from physgrad.nets.adapters import network_input
from physgrad.physics.fluid import (
    centered_to_staggered,
    energy,
    make_incompressible,
    sample_initial_state,
)
from physgrad.problems.fluid import FluidProblem

advection = sys.modules["physgrad.physics.fluid.advection"]
simulate = sys.modules["physgrad.physics.fluid.simulate"]
pressure = sys.modules["physgrad.physics.fluid.pressure"]


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def phases(problem: FluidProblem, batch_size: int) -> dict[str, Callable[[], object]]:
    """The timed pieces for one batch size."""
    exp = get_experiment("fluid")
    generator = torch.Generator().manual_seed(0)
    batch = problem.sample(batch_size, generator)
    net = exp.network()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.005)
    inputs = network_input(net, batch)
    sim, domain = problem.simulator, problem.domain
    m0, v0 = sample_initial_state(batch_size, generator, domain, sim.time, dtype=problem.dtype)
    estimator = problem.solvers(batch)["reverse-sim"]
    physics = sim.physics(batch.condition)

    def network() -> None:
        optimizer.zero_grad(set_to_none=True)
        (net(inputs) ** 2).mean().backward()
        optimizer.step()

    def ground_truth() -> None:
        with torch.no_grad():
            problem.ground_truth.simulate(m0, v0, record=True)

    def forward() -> torch.Tensor:
        v = batch.x_true.clone().requires_grad_(True)
        return problem.objective(physics(v), batch.y_target).mean()

    def no_grad() -> None:
        with torch.no_grad():
            physics(batch.x_true)

    return {
        "network bound": network,
        "data: initial state": lambda: sample_initial_state(
            batch_size, generator, domain, sim.time, dtype=problem.dtype
        ),
        "data: ground-truth run": ground_truth,
        "physics forward (graph)": forward,
        "physics forward + backward": lambda: forward().backward(),
        "simulation, no gradients": no_grad,
        "reverse-sim estimator": lambda: estimator(batch.x_true, batch.y_target, physics),
        "metrics (no cached run)": lambda: problem.metrics(batch.x_true + 1e-3, batch),
    }


def step_pieces(problem: FluidProblem, batch_size: int) -> dict[str, Callable[[], object]]:
    """The parts of one training-simulator step for one batch size."""
    batch = problem.sample(batch_size, torch.Generator().manual_seed(1))
    sim, d = problem.simulator, problem.domain
    v = make_incompressible(centered_to_staggered(batch.x_true), d)[0]
    m = batch.condition.unsqueeze(1)

    def velocity_advection(v: torch.Tensor = v) -> torch.Tensor:
        return advection._advect_staggered(v, v, sim.dt, d, sim.scheme)

    def marker_advection(v: torch.Tensor = v) -> torch.Tensor:
        return advection._advect_centered(m, v, sim.dt, d, sim.scheme, True)

    def projection(v: torch.Tensor = v) -> torch.Tensor:
        return pressure._make_incompressible(v, d, "fft", None, None)[0]

    def energy_rescale(v: torch.Tensor = v) -> torch.Tensor:
        return simulate.rescale_energy(v, energy(v), sim.energy)

    def whole_step(v: torch.Tensor = v) -> tuple[torch.Tensor, ...]:
        return sim._step(m, v, None)[:2]

    def no_grad(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            with torch.no_grad():
                fn()
        return run

    def with_backward(fn: Callable[[torch.Tensor], object]) -> Callable[[], object]:
        def run() -> None:
            leaf = v.clone().requires_grad_(True)
            out = fn(leaf)
            outputs = out if isinstance(out, tuple) else (out,)
            sum((o**2).sum() for o in outputs).backward()  # type: ignore[union-attr]
        return run

    parts = {
        "velocity self-advection (face means + MacCormack)": velocity_advection,
        "pressure projection (FFT)": projection,
        "energy rescale": energy_rescale,
        "marker advection (centring + MacCormack)": marker_advection,
        "whole step": whole_step,
    }
    out = {f"{name}, no gradients": no_grad(fn) for name, fn in parts.items()}
    out.update({f"{name}, forward + backward": with_backward(fn) for name, fn in parts.items()})
    return out


def timed_table(
    pieces: dict[str, Callable[[], object]], rounds: int, batch_size: int, reference: str
) -> None:
    """Warm up, time ``pieces`` interleaved over ``rounds``, print rows relative to
    ``reference`` (a key of ``pieces``, or a number of seconds)."""
    for fn in pieces.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(rounds):
        for name, fn in pieces.items():
            times[name].append(cpu_seconds(fn))
    base = statistics.median(times[reference])
    for name in pieces:
        median = statistics.median(times[name])
        print(f"| {batch_size} | {name} | {1e3 * median:.2f} | {median / base:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), cpus={os.cpu_count()}, "
          f"load1={load:.2f}, rounds={args.rounds}")
    batches = [int(b) for b in args.batches.split(",")]
    print("| batch | phase | CPU ms | / network bound |")
    print("|---|---|---|---|")
    for batch_size in batches:
        problem = get_experiment("fluid").problem()
        assert isinstance(problem, FluidProblem)
        timed_table(phases(problem, batch_size), args.rounds, batch_size, "network bound")
    print()
    print("| batch | one training-simulator step | CPU ms | / whole step of the same kind |")
    print("|---|---|---|---|")
    for batch_size in batches:
        problem = get_experiment("fluid").problem()
        assert isinstance(problem, FluidProblem)
        pieces = step_pieces(problem, batch_size)
        for kind in ("no gradients", "forward + backward"):
            timed_table(
                {name: fn for name, fn in pieces.items() if name.endswith(kind)},
                args.rounds, batch_size, f"whole step, {kind}",
            )


if __name__ == "__main__":
    main()
