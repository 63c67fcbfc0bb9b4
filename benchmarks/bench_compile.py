"""``--compile`` break-even: torch.compile's up-front cost against its faster steps.

For one experiment (default heat, batch 32, one thread) and one method, two Trainers with the
same weights: eager and ``compile=True``. The first compiled step includes compilation (timed
separately), then eager and compiled steps are timed interleaved in blocks; all times are CPU
seconds of this process (one thread), so other jobs on the machine do not inflate them.
Break-even = compilation overhead (wall-clock of the first compiled step minus an eager step)
/ (eager step − compiled step): the run length above which ``--compile`` saves time.

    OMP_NUM_THREADS=1 python benchmarks/bench_compile.py [--experiment heat] [--method pg-inverse]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from physgrad.experiments import get_experiment
from physgrad.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="heat")
    parser.add_argument("--method", default="pg-inverse")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp = get_experiment(args.experiment)
    spec = exp.methods[args.method]
    torch.manual_seed(0)
    init = exp.network().state_dict()
    trainers = {}
    for label, compile_ in (("eager", False), ("compiled", True)):
        net = exp.network()
        net.load_state_dict(init)
        trainers[label] = Trainer(exp.problem(), net, spec.method(), spec.optimizer,
                                  batch_size=args.batch, progress=False, compile=compile_)
    t0, w0 = time.process_time(), time.perf_counter()
    trainers["eager"].step()
    first_eager = time.process_time() - t0
    t0, w0 = time.process_time(), time.perf_counter()
    trainers["compiled"].step()  # compiles the training-mode graph
    # the C++ compilation runs in worker processes: its cost shows in wall-clock time only
    first_compiled, compile_wall = time.process_time() - t0, time.perf_counter() - w0
    blocks: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.rounds):
        for label, trainer in trainers.items():
            t0 = time.process_time()  # CPU time: robust to other jobs on a shared machine
            for _ in range(args.steps):
                trainer.step()
            blocks[label].append((time.process_time() - t0) / args.steps)
    eager = statistics.median(blocks["eager"])
    compiled = statistics.median(blocks["compiled"])
    overhead = compile_wall - first_eager
    gain = eager - compiled
    print(f"torch {torch.__version__}, 1 thread, {args.experiment}/{args.method}, "
          f"batch {args.batch}, CPU time, median of {args.rounds} blocks of {args.steps}")
    print("| first step eager (CPU) | first compiled step: wall-clock (CPU of this process) "
          "| eager step (CPU) | compiled step (CPU) | compiled / eager | break-even iterations |")
    print("|---|---|---|---|---|---|")
    even = f"{overhead / gain:,.0f}" if gain > 0 else "never (no gain)"
    print(f"| {first_eager:.2f} s | {compile_wall:.0f} s ({first_compiled:.1f} s) "
          f"| {1e3 * eager:.0f} ms | {1e3 * compiled:.0f} ms | {compiled / eager:.2f} | {even} |")


if __name__ == "__main__":
    main()
