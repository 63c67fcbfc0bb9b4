"""Time batched Poisson solves ``y = ∇⁻² x`` (zero Dirichlet): CG (rtol 1e-5) vs exact DST-I.

Usage: ``python benchmarks/bench_poisson.py [--batch 128] [--shape 80 60] [--repeats 7]``.
Data: the Poisson problem's smooth noise. Forward solves only (no autograd); one warm-up each.
Prints one line per (dtype, method) with min/median milliseconds and a ratio line per dtype
(on a shared/loaded CPU the min is the more reliable statistic).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from physgrad.physics.poisson import poisson_solve
from physgrad.problems.poisson import smooth_noise


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--shape", type=int, nargs=2, default=(80, 60))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rtol", type=float, default=1e-5)
    args = parser.parse_args()
    shape = tuple(args.shape)
    print(
        f"torch {torch.__version__} threads={torch.get_num_threads()} "
        f"batch={args.batch} grid={shape[0]}x{shape[1]} CG rtol={args.rtol} repeats={args.repeats}"
    )
    x64 = smooth_noise(args.batch, shape, torch.Generator().manual_seed(0), dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        x = x64.to(dtype)
        with torch.no_grad():
            y_dst = poisson_solve(x, "dst")
            y_cg, info = poisson_solve(x, "cg", args.rtol, return_info=True)
            err = ((y_cg - y_dst).flatten(1).norm(dim=1) / y_dst.flatten(1).norm(dim=1)).max()
            t_dst = _time(lambda x=x: poisson_solve(x, "dst"), args.repeats)
            t_cg = _time(lambda x=x: poisson_solve(x, "cg", args.rtol), args.repeats)
        name = str(dtype).replace("torch.", "")
        med_dst, med_cg = statistics.median(t_dst), statistics.median(t_cg)
        print(
            f"poisson {name} DST-I (torch FFT): min={min(t_dst):.2f}ms med={med_dst:.2f}ms"
        )
        print(
            f"poisson {name} CG: min={min(t_cg):.2f}ms med={med_cg:.2f}ms "
            f"iters={info.max_iterations} max relres={info.max_residual:.2e} "
            f"max rel err vs DST={float(err):.2e}"
        )
        print(
            f"poisson {name} ratio CG/DST: median {med_cg / med_dst:.1f}x, "
            f"min {min(t_cg) / min(t_dst):.1f}x"
        )


if __name__ == "__main__":
    main()
