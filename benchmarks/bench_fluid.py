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
the staggered velocity, ``fluid.make_incompressible`` with ``Solve("CG", 1e-5, 1e-5)``
warm-started from the previous step's pressure, per-component energy rescale, MacCormack of the
marker) in float64 on the same inputs and thread count, interleaved repeat by repeat with ours
(FFT and CG projections), and prints the time ratios. float32 is not timed for PhiFlow: its CG
does not reach rtol 1e-5 in float32 on these fields (it runs to the iteration cap).
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
    """Our float64 step (FFT and CG) and PhiFlow's, interleaved; medians and ratios."""
    import warnings

    warnings.filterwarnings("ignore")  # PhiFlow's deprecation / sparse-tensor notices
    from phiml import math

    from physgrad.interop import centered_grid, phiflow_fluid_step, staggered_grid

    sim = FluidSimulator(domain)
    sim_cg = FluidSimulator(domain, pressure="cg", cg_options=CGOptions(rtol=1e-5))
    with torch.no_grad():  # time the second step: warm-start both CGs from the first's pressure
        m1, vel, p_prev = sim._step(marker[:, None], sim.initial_velocity(v0), None)
    marker = m1[:, 0]
    solve = math.Solve(
        "CG",
        1e-5,
        1e-5,
        max_iterations=2000,
        x0=centered_grid(p_prev, domain),
        suppress=[math.Diverged, math.NotConverged],  # reported below via the divergence
    )
    with math.precision(64):
        _, phi_v, _ = phiflow_fluid_step(
            centered_grid(marker, domain), staggered_grid(vel, domain), sim.dt, solve=solve
        )
    ours_v = sim._step(marker[:, None], vel, None)[1]
    for label, v in (("ours fft", ours_v), ("phiflow", phi_v.values.native("batch,~vector,y,x"))):
        div = float(divergence(v, domain).abs().max())
        print(f"max|div| after the {label} step (projection + energy rescale): {div:.1e}")

    def ours(s: FluidSimulator, grad: bool) -> Callable[[], object]:
        def run() -> None:
            m = marker[:, None].clone().requires_grad_(grad)
            v = vel.clone().requires_grad_(grad)
            with torch.set_grad_enabled(grad):
                m1, v1, _ = s._step(m, v, p_prev)
                if grad:
                    ((m1**2).sum() + (v1**2).sum()).backward()

        return run

    def phiflow(grad: bool) -> Callable[[], object]:
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

    cases = {
        "ours fft forward": ours(sim, False),
        "ours cg  forward": ours(sim_cg, False),
        "phiflow  forward": phiflow(False),
        "ours fft forward+backward": ours(sim, True),
        "ours cg  forward+backward": ours(sim_cg, True),
        "phiflow  forward+backward": phiflow(True),
    }
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
        print(f"fluid step float64 {key + ':':27s}{_fmt((wall[key], cpu[key]))}")
    med = {k: statistics.median(w) for k, w in wall.items()}
    for kind in ("forward", "forward+backward"):
        phi = med[f"phiflow  {kind}"]
        print(
            f"phiflow / ours ({kind}, medians): {phi / med[f'ours fft {kind}']:.1f}x vs our FFT "
            f"projection, {phi / med[f'ours cg  {kind}']:.1f}x vs our CG projection"
        )


if __name__ == "__main__":
    main()
