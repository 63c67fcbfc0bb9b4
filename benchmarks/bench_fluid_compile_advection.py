"""Does ``torch.compile`` fuse the fluid advection? Eager against compiled ``_advect_fast``.

Usage: ``python benchmarks/bench_fluid_compile_advection.py [--fields 16] [--repeats 30]``.

Compiles the no-gradient MacCormack advection (``physgrad.physics.fluid.advection.
_advect_fast``, the simulator's hot path) with inductor for one fixed shape (``fields``
64 x 64 fields, float32, the staggered velocity of a batch of ``fields / 2``), prints the
compilation time, the largest difference to eager and the median process CPU time per call
of both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

import physgrad.physics.fluid  # noqa: F401  (loads the submodules)

advection = sys.modules["physgrad.physics.fluid.advection"]


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(args.fields, 64, 64, generator=generator)
    shift = 0.5 * torch.randn(args.fields, 2, 64, 64, generator=generator)

    def eager(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return advection._advect_fast(v, s, True, False)[0]

    compiled = torch.compile(eager, dynamic=False)
    with torch.no_grad():
        wall, cpu = time.time(), time.process_time()
        out = compiled(values, shift)
        print(f"torch {torch.__version__}, {args.fields} fields of 64 x 64, float32, 1 thread")
        seconds = (time.time() - wall, time.process_time() - cpu)
        difference = float((out - eager(values, shift)).abs().max())
        print(f"compilation: {seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU; "
              f"max |compiled - eager| = {difference:.2e}")
        print(f"eager: {cpu_ms(lambda: eager(values, shift), args.repeats):.3f} ms / call, "
              f"compiled: {cpu_ms(lambda: compiled(values, shift), args.repeats):.3f} ms / call")


if __name__ == "__main__":
    main()
