"""Time a fluid training iteration against its network bound for two versions of physgrad,
interleaved round by round.

Usage: ``python benchmarks/bench_fluid_versions.py --before PATH [--after PATH] [--batches 8,64]
[--rounds 5] [--threads 1]``.

``PATH`` is a ``src`` folder holding a ``physgrad`` package (e.g. ``git worktree add
/tmp/base <commit>`` and ``/tmp/base/src``); ``--after`` defaults to this checkout's ``src``.
Each version runs in its own worker process (a Python package cannot be imported twice in
one process); the workers take turns, one batch size at a time, so both see the same load.
A worker times, as ``bench_fluid_iteration.py`` does, one :class:`~physgrad.training.Trainer`
step per method of the ``fluid`` experiment (process CPU time: data generation, prediction,
loss, backward, optimizer step, metrics) and the *network bound* (the same U-Net's forward,
backward and Adam step on the same batch). Prints per batch size and method the median over
rounds of each version's seconds per iteration, its ratio to its own bound, and after / before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def worker(batches: list[int], threads: int) -> None:
    """Serve timing requests on stdin: a batch size in, one JSON line of CPU seconds out."""
    import torch

    from physgrad.experiments import get_experiment
    from physgrad.nets.adapters import network_input
    from physgrad.training.trainer import Trainer

    torch.set_num_threads(threads)
    exp = get_experiment("fluid")
    setups = {}
    for batch_size in batches:
        problem = exp.problem()
        trainers = {
            method: Trainer(problem, exp.network(), spec.method(), spec.optimizer,
                            batch_size=batch_size, seed=0, progress=False)
            for method, spec in exp.methods.items()
        }
        net = exp.network()
        optimizer = torch.optim.Adam(net.parameters(), lr=0.005)
        inputs = network_input(net, problem.sample(batch_size, torch.Generator()))

        def network_step(net=net, optimizer=optimizer, inputs=inputs) -> None:
            optimizer.zero_grad(set_to_none=True)
            (net(inputs) ** 2).mean().backward()
            optimizer.step()

        for trainer in trainers.values():  # warm-up
            trainer.step()
        network_step()
        setups[batch_size] = (trainers, network_step)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        trainers, network_step = setups[int(line)]
        times = {}
        for method, trainer in trainers.items():
            start = time.process_time()
            trainer.step()
            times[method] = time.process_time() - start
        start = time.process_time()
        network_step()
        times["bound"] = time.process_time() - start
        print(json.dumps(times), flush=True)


def start(src: Path, batches: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen(
        [sys.executable, str(HERE), "--worker", "--batches", batches, "--threads", str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    assert ready == {"ready": True}, ready
    return process


def ask(process: subprocess.Popen, batch_size: int) -> dict[str, float]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(f"{batch_size}\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="src folder of the earlier version")
    parser.add_argument("--after", type=Path, default=HERE.parent.parent / "src")
    parser.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.worker:
        worker(batches, args.threads)
        return
    if args.before is None:
        parser.error("--before PATH is required")
    for path in (args.before, args.after):
        if not (path / "physgrad" / "__init__.py").exists():
            parser.error(f"no physgrad package under {str(path)!r}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.threads} thread(s) per worker, cpus={os.cpu_count()}, load1={load:.2f}, "
          f"rounds={args.rounds}\nbefore: {args.before}\nafter: {args.after}")
    versions = {"before": start(args.before, args.batches, args.threads),
                "after": start(args.after, args.batches, args.threads)}
    times: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for round_ in range(args.rounds):
            order = list(versions) if round_ % 2 == 0 else list(reversed(versions))
            for batch_size in batches:
                for name in order:
                    times.setdefault((name, batch_size), []).append(
                        ask(versions[name], batch_size)
                    )
    finally:
        for process in versions.values():
            process.stdin.close()  # type: ignore[union-attr]
            process.wait()
    print("| batch | method | before: s / it. (/ bound) | after: s / it. (/ bound) | "
          "after / before | bound before, after: s |")
    print("|---|---|---|---|---|---|")
    for batch_size in batches:
        bounds = {name: statistics.median(t["bound"] for t in times[name, batch_size])
                  for name in versions}
        methods = [k for k in times["before", batch_size][0] if k != "bound"]
        for method in methods:
            medians = {name: statistics.median(t[method] for t in times[name, batch_size])
                       for name in versions}
            cells = " | ".join(f"{medians[n]:.3f} ({medians[n] / bounds[n]:.2f}x)"
                               for n in versions)
            print(f"| {batch_size} | {method} | {cells} | "
                  f"{medians['after'] / medians['before']:.2f} | "
                  f"{bounds['before']:.3f}, {bounds['after']:.3f} |", flush=True)
    print(f"load1 at the end: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
