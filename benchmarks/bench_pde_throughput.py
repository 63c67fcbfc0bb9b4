"""Poisson and heat: physics throughput and time per training iteration of every method.

1. Physics forward and forward+backward throughput (samples/s) at batch 128 on 64x64 and
   80x60 grids: Poisson (DST-I direct solve, CG with adjoint backward) and heat (FFT).
2. Time per training iteration of each `poisson` / `heat` method (U-Net, cpu-scale batch),
   measured interleaved (round-robin blocks) so load changes hit all methods alike.

    OMP_NUM_THREADS=1 python benchmarks/bench_pde_throughput.py [--batch 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from physgrad.experiments import get_experiment
from physgrad.physics import diffuse, poisson_solve
from physgrad.training import Trainer


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def physics_throughput(batch: int, repeats: int) -> None:
    print("| physics | grid | dtype | forward samples/s | forward+backward samples/s |")
    print("|---|---|---|---|---|")
    cases = {
        "poisson (DST)": lambda x: poisson_solve(x, method="dst"),
        "poisson (CG, rtol 1e-5)": lambda x: poisson_solve(x, method="cg"),
        "heat (FFT, nu t = 8)": lambda x: diffuse(x, 8.0),
    }
    for name, fn in cases.items():
        for shape in ((64, 64), (80, 60)):
            for dtype in (torch.float32, torch.float64):
                x = torch.randn(batch, *shape, dtype=dtype)

                def fwd(x=x, fn=fn):
                    with torch.no_grad():
                        fn(x)

                def fwd_bwd(x=x, fn=fn):
                    z = x.clone().requires_grad_(True)
                    fn(z).square().sum().backward()

                f, fb = _time(fwd, repeats), _time(fwd_bwd, repeats)
                print(f"| {name} | {shape[0]}x{shape[1]} | {str(dtype)[6:]} | {batch / f:,.0f} "
                      f"| {batch / fb:,.0f} |")


def iteration_times(rounds: int, steps: int) -> None:
    print("\n| experiment | method | batch | ms / iteration | ratio to Adam |")
    print("|---|---|---|---|---|")
    for name in ("poisson", "heat"):
        exp = get_experiment(name)
        batch = exp.scale("cpu").batch_size
        trainers = {}
        for method, spec in exp.methods.items():
            if method == "pg-lbfgsb":  # scipy per sample: minutes per iteration at this batch
                continue
            torch.manual_seed(0)
            trainers[method] = Trainer(exp.problem(), exp.network(), spec.method(),
                                       spec.optimizer, batch_size=batch, progress=False)
            trainers[method].step()
        blocks: dict[str, list[float]] = {m: [] for m in trainers}
        for _ in range(rounds):
            for method, trainer in trainers.items():
                t0 = time.perf_counter()
                for _ in range(steps):
                    trainer.step()
                blocks[method].append((time.perf_counter() - t0) / steps)
        adam = statistics.median(blocks["adam"])
        for method, values in blocks.items():
            med = statistics.median(values)
            print(f"| {name} | {method} | {batch} | {1e3 * med:.0f} | {med / adam:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    physics_throughput(args.batch, args.repeats)
    iteration_times(args.rounds, args.steps)


if __name__ == "__main__":
    main()
