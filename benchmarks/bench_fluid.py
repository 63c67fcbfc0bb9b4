"""Time one batched fluid step (MacCormack x2 + projection + energy rescale), 64x64 periodic.

Usage: ``python benchmarks/bench_fluid.py [--batch 64] [--repeats 10] [--threads N] [--cg]
[--phiflow]``.
For fp32 and fp64: forward only (``no_grad``) and forward+backward (gradients w.r.t. the marker
and the velocity of a scalar loss of both outputs), FFT projection; optionally the CG projection
(rtol 1e-5, warm-started from the previous step's pressure as in a running simulation) and a
full 8-step ``FluidSimulator`` forward+backward. Prints min / median wall-clock milliseconds and
the median process CPU time per line (on a shared machine, compare CPU time with ``--threads 1``).

``--phiflow`` (needs ``pip install physgrad[phiflow]``) also times the same step written with
PhiFlow's torch backend (:func:`physgrad.interop.phiflow_fluid_step`: ``advect.mac_cormack`` of
the staggered velocity, ``fluid.make_incompressible`` with ``Solve("CG")`` and with
``Solve("biCG-stab(2)")``, both at tolerance 1e-5 and warm-started from the previous step's
pressure, per-component energy rescale, MacCormack of the marker) in float64 on the same
inputs and thread count, interleaved repeat by repeat with ours (FFT and CG projections); it
prints how well each PhiFlow solve projects and the time ratios. float32 is not timed for
PhiFlow: its solves do not reach 1e-5 in float32 on these fields.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from physgrad.physics.fluid import CGOptions, Domain, FluidSimulator, divergence


def _time(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU milliseconds per call (CPU time is robust to preemption)."""
    fn()  # warm-up
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return wall, cpu


def _fmt(times: tuple[list[float], list[float]]) -> str:
    wall, cpu = times
    return (
        f"min={min(wall):.2f}ms med={statistics.median(wall):.2f}ms "
        f"(process cpu med={statistics.median(cpu):.2f}ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cg", action="store_true", help="also time the CG projection")
    parser.add_argument("--sim", action="store_true", help="also time a full 8-step run")
    parser.add_argument(
        "--phiflow", action="store_true", help="also time the same step in PhiFlow (float64)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.size
    domain = Domain(n, n, 2.0 * n, 2.0 * n)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__} threads={torch.get_num_threads()} batch={args.batch} "
        f"grid={n}x{n} dx=2 dt=0.25 repeats={args.repeats} cpus={os.cpu_count()} "
        f"load1={load:.2f}"
    )
    gen = torch.Generator().manual_seed(0)
    marker64 = torch.rand(args.batch, n, n, generator=gen, dtype=torch.float64)
    v064 = 3.0 * torch.randn(args.batch, 2, n, n, generator=gen, dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).replace("torch.", "")
        sim = FluidSimulator(domain)
        marker = marker64.to(dtype)[:, None]
        with torch.no_grad():
            vel = sim.initial_velocity(v064.to(dtype))

        def forward(sim: FluidSimulator = sim, m: torch.Tensor = marker, v: torch.Tensor = vel):
            with torch.no_grad():
                return sim._step(m, v, None)

        def forward_backward(
            sim: FluidSimulator = sim, m: torch.Tensor = marker, v: torch.Tensor = vel
        ) -> None:
            m = m.detach().requires_grad_(True)
            v = v.detach().requires_grad_(True)
            m1, v1, _ = sim._step(m, v, None)
            ((m1**2).sum() + (v1**2).sum()).backward()

        m1, v1, p = forward()
        div = float(divergence(v1, domain).abs().max())
        print(
            f"fluid step {name} fft forward:          {_fmt(_time(forward, args.repeats))}"
            f" (max|div| after projection+rescale={div:.1e})"
        )
        print(
            f"fluid step {name} fft forward+backward: {_fmt(_time(forward_backward, args.repeats))}"
        )
        if args.cg:
            sim_cg = FluidSimulator(domain, pressure="cg", cg_options=CGOptions(rtol=1e-5))

            # a running simulation warm-starts from the previous step's pressure
            def forward_cg(sim: FluidSimulator = sim_cg, m=m1, v=v1, p=p):
                with torch.no_grad():
                    return sim._step(m, v, p)

            def forward_backward_cg(sim: FluidSimulator = sim_cg, m=m1, v=v1, p=p) -> None:
                m = m.detach().requires_grad_(True)
                v = v.detach().requires_grad_(True)
                m1, v1, _ = sim._step(m, v, p)
                ((m1**2).sum() + (v1**2).sum()).backward()

            print(
                f"fluid step {name} cg  forward:          {_fmt(_time(forward_cg, args.repeats))}"
            )
            print(
                f"fluid step {name} cg  forward+backward: "
                f"{_fmt(_time(forward_backward_cg, args.repeats))}"
            )
        if args.sim:
            v0 = v064.to(dtype)
            m0 = marker64.to(dtype)

            def run(sim: FluidSimulator = sim, m0: torch.Tensor = m0, v0: torch.Tensor = v0):
                v = v0.detach().requires_grad_(True)
                (sim(m0, v) ** 2).sum().backward()

            reps = max(1, args.repeats // 5)
            print(f"fluid 8-step simulate {name} fft forward+backward: {_fmt(_time(run, reps))}")
    if args.phiflow:
        _bench_phiflow(domain, marker64, v064, args.repeats)


def _bench_phiflow(domain: Domain, marker: torch.Tensor, v0: torch.Tensor, repeats: int) -> None:
    """Our float64 step (FFT and CG) and PhiFlow's (CG, BiCGStab(2)), interleaved; ratios."""
    import warnings

    warnings.filterwarnings("ignore")  # PhiFlow's deprecation / sparse-tensor notices
    from phi.physics import advect, fluid
    from phiml import math

    from physgrad.interop import centered_grid, phiflow_fluid_step, staggered_grid

    sim = FluidSimulator(domain)
    sim_cg = FluidSimulator(domain, pressure="cg", cg_options=CGOptions(rtol=1e-5))
    with torch.no_grad():  # time the second step: warm-start every CG from the first's pressure
        m1, vel, p_prev = sim._step(marker[:, None], sim.initial_velocity(v0), None)
    marker = m1[:, 0]
    solves = {  # PhiFlow reports non-convergence by raising; measured below instead
        name: math.Solve(
            name,
            1e-5,
            1e-5,
            max_iterations=2000,
            x0=centered_grid(p_prev, domain),
            suppress=[math.Diverged, math.NotConverged],
        )
        for name in ("CG", "biCG-stab(2)")
    }
    # accuracy of each projection on the self-advected velocity of this step
    with torch.no_grad(), math.precision(64):
        grid = staggered_grid(vel, domain)
        advected = advect.mac_cormack(grid, grid, sim.dt)
        div0 = float(divergence(advected.values.native("batch,~vector,y,x"), domain).abs().max())
        for name, solve in solves.items():
            projected = fluid.make_incompressible(advected, (), solve)[0]
            div = divergence(projected.values.native("batch,~vector,y,x"), domain).abs()
            div = div.amax(dim=(1, 2)) / div0
            print(
                f"phiflow {name} projection: max|div| / max|div before| = {float(div.max()):.1e}"
                f" (samples above 1e-3: {int((div > 1e-3).sum())}/{len(div)})"
            )

    def ours(s: FluidSimulator, grad: bool) -> Callable[[], object]:
        def run() -> None:
            m = marker[:, None].clone().requires_grad_(grad)
            v = vel.clone().requires_grad_(grad)
            with torch.set_grad_enabled(grad):
                m1, v1, _ = s._step(m, v, p_prev)
                if grad:
                    ((m1**2).sum() + (v1**2).sum()).backward()

        return run

    def phiflow(solve: object, grad: bool) -> Callable[[], object]:
        def run() -> None:
            m = marker.clone().requires_grad_(grad)
            v = vel.clone().requires_grad_(grad)
            with torch.set_grad_enabled(grad), math.precision(64):
                m1, v1, _ = phiflow_fluid_step(
                    centered_grid(m, domain), staggered_grid(v, domain), sim.dt, solve=solve
                )
                if grad:
                    m1 = m1.values.native("batch,y,x")
                    v1 = v1.values.native("batch,~vector,y,x")
                    ((m1**2).sum() + (v1**2).sum()).backward()

        return run

    cases = {}
    for kind, grad in (("forward", False), ("forward+backward", True)):
        cases[f"ours fft {kind}"] = ours(sim, grad)
        cases[f"ours cg {kind}"] = ours(sim_cg, grad)
        for name, solve in solves.items():
            cases[f"phiflow {name} {kind}"] = phiflow(solve, grad)
    for fn in cases.values():  # warm-up (PhiFlow builds and caches its sparse Laplacian)
        fn()
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):  # interleaved: load changes hit every case alike
        for key, fn in cases.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[key].append((time.perf_counter() - start) * 1e3)
            cpu[key].append((time.process_time() - start_cpu) * 1e3)
    for key in cases:
        print(f"fluid step float64 {key + ':':44s}{_fmt((wall[key], cpu[key]))}")
    med = {k: statistics.median(w) for k, w in wall.items()}
    for kind in ("forward", "forward+backward"):
        for name in solves:
            phi = med[f"phiflow {name} {kind}"]
            print(
                f"phiflow {name} / ours ({kind}, medians): {phi / med[f'ours fft {kind}']:.1f}x"
                f" vs our FFT projection, {phi / med[f'ours cg {kind}']:.1f}x vs our CG"
            )


if __name__ == "__main__":
    main()
