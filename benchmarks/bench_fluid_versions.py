"""Time a fluid training iteration against its network bound for two versions of physgrad,
interleaved round by round.

Usage: ``python benchmarks/bench_fluid_versions.py --before PATH [--after PATH] [--batches 8,64]
[--rounds 5] [--runs 1] [--threads 1]``.

``PATH`` is a ``src`` folder holding a ``physgrad`` package (e.g. ``git worktree add
/tmp/base <commit>`` and ``/tmp/base/src``); ``--after`` defaults to this checkout's ``src``.
Each version runs in its own worker process (a Python package cannot be imported twice in
one process); the workers take turns, one batch size at a time, so both see the same load.
A worker times, as ``bench_fluid_iteration.py`` does, one :class:`~physgrad.training.Trainer`
step per method of the ``fluid`` experiment (process CPU time: data generation, prediction,
loss, backward, optimizer step, metrics) and the *network bound* (the same U-Net's forward,
backward and Adam step on the same batch). Prints per batch size and method the median over
rounds of each version's seconds per iteration, its ratio to its own bound, and after / before.

A worker process's own speed differs from another's running the same code by up to ~5% on
this project's machines (where each lands, its heap): ``--runs N`` starts ``N`` fresh pairs
of workers, the first started alternating between the versions, prints each run's table and
then, per batch size and method, the median and range over runs of each version's ratio to
its own bound, to the mean of both workers' bounds (the network code is usually the same in
both versions, and a worker's bound alone moves its ratio by a few per cent) and of
after / before. Pinning all of it to one core (``taskset -c 1 python ...``)
takes the core each worker lands on out of the comparison.
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


def one_run(args: argparse.Namespace, batches: list[int], first: str
            ) -> dict[tuple[int, str], dict[str, float]]:
    """Start a pair of workers (``first`` started first), time ``args.rounds`` rounds, print
    the table and return per (batch, method) each version's ratio to its bound and after /
    before."""
    paths = {"before": args.before, "after": args.after}
    names = [first, "after" if first == "before" else "before"]
    started = {name: start(paths[name], args.batches, args.threads) for name in names}
    versions = {name: started[name] for name in ("before", "after")}
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
    print(f"workers started: {names[0]} first")
    print("| batch | method | before: s / it. (/ bound) | after: s / it. (/ bound) | "
          "after / before | bound before, after: s |")
    print("|---|---|---|---|---|---|")
    ratios: dict[tuple[int, str], dict[str, float]] = {}
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
            pooled = (bounds["before"] + bounds["after"]) / 2
            ratios[batch_size, method] = {
                **{n: medians[n] / bounds[n] for n in versions},
                **{f"{n} pooled": medians[n] / pooled for n in versions},
                "after / before": medians["after"] / medians["before"],
            }
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="src folder of the earlier version")
    parser.add_argument("--after", type=Path, default=HERE.parent.parent / "src")
    parser.add_argument("--batches", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="fresh pairs of workers")
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
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be >= 1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"{args.threads} thread(s) per worker, cpus={os.cpu_count()} (this process may use "
          f"{affinity}), load1={load:.2f}, rounds={args.rounds}, runs={args.runs}\n"
          f"before: {args.before}\nafter: {args.after}")
    runs = [one_run(args, batches, "before" if run % 2 == 0 else "after")
            for run in range(args.runs)]
    if args.runs > 1:
        print(f"\nover {args.runs} runs: median [min, max]; 'pooled': against the mean of "
              "both workers' bounds (fairer when the network code is the same in both)")
        print("| batch | method | before / bound | after / bound | before / pooled bound | "
              "after / pooled bound | after / before |")
        print("|---|---|---|---|---|---|---|")
        for key in runs[0]:
            cells = []
            for column in ("before", "after", "before pooled", "after pooled",
                           "after / before"):
                values = [run[key][column] for run in runs]
                cells.append(f"{statistics.median(values):.2f} "
                             f"[{min(values):.2f}, {max(values):.2f}]")
            print(f"| {key[0]} | {key[1]} | {' | '.join(cells)} |")
    print(f"load1 at the end: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
