"""The three own-physics examples over several seeds: Adam vs Adam + PG, scored on fixed problems.

Runs ``examples/pendulum.py``, ``examples/burgers.py`` and ``examples/observations_on_disk.py``
(their ``main`` with the default iterations, batch, methods and solver settings) for each seed,
one thread, and writes ``results.json`` (per example, method and seed: the final score on the
fixed evaluation problems, the training running mean, the median CPU and wall time per
iteration, and the evaluation curve) and ``results.md`` (the table BENCHMARKS.md quotes:
medians over seeds, and Adam / Adam + PG as a geometric mean over seeds with its 95%
Student-t interval).

The seed sets the initial weights and the order of the training data. pendulum and Burgers
draw fresh problems from their simulators and score 256 held-out problems (a fixed seed of
their own); observations_on_disk trains from one file of 2048 spectra (written with seed 0 for
every run) and, having nothing else, scores 256 rows drawn from that same file: not held out.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/examples_seeds.py \
        --seeds 0,1,2,3,4 --out docs/results/examples-seeds
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from diagnose_validation import load_example

from physgrad.experiments.runner import Comparison, final_value
from physgrad.stats import interval

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {  # script -> what the table calls it
    "pendulum": "pendulum",
    "burgers": "Burgers",
    "observations_on_disk": "observations on disk",
}


def record(result: Comparison) -> dict[str, dict]:
    """Per method of one run: ``heldout`` (last evaluation of the headline metric), ``train``
    (running mean of the last ``smoothing`` training batches), ``cpu_ms``/``step_ms`` (median
    per iteration) and ``curve`` (``[iteration, value]`` of every evaluation)."""
    exp = result.experiment
    metric = exp.metrics[0]
    out = {}
    for method, history in result.histories.items():
        held = result.heldout[method]
        out[method] = {
            "label": exp.methods[method].label,
            "heldout": held[metric][-1],
            "train": final_value(history[metric], exp.smoothing),
            "cpu_ms": 1e3 * statistics.median(history["cpu_time"]),
            "step_ms": 1e3 * statistics.median(history["step_time"]),
            "curve": [[int(i), float(v)] for i, v in zip(held["iteration"], held[metric],
                                                          strict=True)],
        }
    return out


def at_equal_cpu(adam: dict, pg: dict, iterations: int) -> float:
    """Adam + PG's score at its last evaluation within the CPU time Adam's whole run took
    (iteration <= ``iterations`` x Adam's / Adam + PG's median CPU time per iteration), for
    one seed's records."""
    limit = iterations * adam["cpu_ms"] / pg["cpu_ms"]
    return [v for i, v in pg["curve"] if i <= limit][-1]


def summary_table(data: dict) -> str:
    """The markdown table of ``results.md`` from ``results.json``'s content."""
    lines = [
        "| example | seeds | metric | Adam | Adam + PG | Adam / Adam + PG (95% interval) "
        "| PG better on | CPU time per iteration / Adam's | Adam / Adam + PG at equal CPU time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in data["examples"].items():
        adam, pg = (entry["methods"][m] for m in entry["order"])
        seeds = sorted(adam["seeds"], key=int)
        a, p = ([run["seeds"][s] for s in seeds] for run in (adam, pg))
        ratios = [x["heldout"] / y["heldout"] for x, y in zip(a, p, strict=True)]
        equal = [x["heldout"] / at_equal_cpu(x, y, entry["iterations"])
                 for x, y in zip(a, p, strict=True)]
        cpu = statistics.mean(y["cpu_ms"] / x["cpu_ms"] for x, y in zip(a, p, strict=True))
        cells = [f"{statistics.median(r['heldout'] for r in runs):.3g}" for runs in (a, p)]
        for values in (ratios, equal):
            mean, lo, hi = interval(values, log=True)
            cells.append(f"{mean:.3g} [{lo:.3g}, {hi:.3g}]")
        lines.append(
            f"| {EXAMPLES[name]} ({entry['iterations']} it., batch {entry['batch_size']}; "
            f"{pg['label'].removeprefix('Adam + PG ').strip('()')}) | {len(seeds)} | "
            f"{entry['metric']} | {cells[0]} | {cells[1]} | {cells[2]} "
            f"| {sum(r > 1 for r in ratios)}/{len(seeds)} | {cpu:.3g} | {cells[3]} |"
        )
    return "\n".join(lines)


def dumps(data: dict) -> str:
    """``data`` as indented JSON with each ``[iteration, value]`` pair of a curve on one line."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s+(\d+),\s+([^\s\[\]]+)\s+\]", r"[\1, \2]", text) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def markdown(data: dict) -> str:
    """``results.md``: how the data were made, what the columns mean, the table."""
    seeds = ",".join(map(str, data["seeds"]))
    return (
        "# The own-physics examples over seeds\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/examples_seeds.py --seeds {seeds}`, one thread, "
        f"torch {data['torch']}, {data['cpu_s']} s CPU in all (the raw per-seed values are in "
        "[results.json](results.json)). Each example's `main` with its default length, batch, "
        "methods and solver settings; the seed sets the initial weights and the order of the "
        "data. Scores: the final network on 256 fixed problems (pendulum, Burgers: held-out "
        "problems drawn from the simulator; observations on disk: rows of its training file, "
        "which is all the data there is, so not held out). Adam and Adam + PG: median over "
        "seeds; Adam / Adam + PG: geometric mean over seeds of the per-seed ratio with its 95% "
        "Student-t interval (> 1: Adam + PG more accurate); CPU time: mean over seeds of the "
        "ratio of median CPU times per iteration; at equal CPU time: Adam's final score over "
        "Adam + PG's at its last evaluation within the CPU time of Adam's whole run.\n\n"
        + summary_table(data) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--only", default=",".join(EXAMPLES), help="comma-separated examples")
    parser.add_argument("--out", type=Path, default=Path("runs/examples-seeds"))
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: rewrite results.md from the existing results.json")
    args = parser.parse_args()
    if args.table_only:
        try:
            data = json.loads((args.out / "results.json").read_text())
        except (OSError, ValueError) as err:
            sys.exit(f"--table-only needs {args.out / 'results.json'}: {err}")
        write_atomic(args.out / "results.md", markdown(data))
        print(summary_table(data))
        return
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        sys.exit(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if len(set(seeds)) < 2:
        sys.exit(f"--seeds needs at least two different seeds for an interval, got {args.seeds!r}")
    names = args.only.split(",")
    if unknown := [n for n in names if n not in EXAMPLES]:
        sys.exit(f"unknown example {unknown[0]!r}; choose from {', '.join(EXAMPLES)}")
    torch.set_num_threads(1)
    data: dict = {"seeds": seeds, "threads": 1, "torch": torch.__version__, "examples": {}}
    started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            module = load_example(name)
            entry: dict = {"methods": {}}
            began = time.process_time()
            for seed in seeds:
                result = module.main(out=os.path.join(tmp, name, f"seed{seed}"), seed=seed)
                exp = result.experiment
                entry.update(metric=exp.metrics[0], iterations=result.iterations,
                             batch_size=exp.scales["cpu"].batch_size, order=list(exp.methods),
                             smoothing=exp.smoothing, heldout=exp.heldout)
                for method, values in record(result).items():
                    label = values.pop("label")
                    slot = entry["methods"].setdefault(method, {"label": label, "seeds": {}})
                    slot["seeds"][str(seed)] = values
            entry["cpu_s"] = round(time.process_time() - began)
            data["examples"][name] = entry
            print(f"{name}: {entry['cpu_s']} s CPU", flush=True)
    data["cpu_s"] = round(time.process_time() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "results.json", dumps(data))
    write_atomic(args.out / "results.md", markdown(data))
    print(summary_table(data))


if __name__ == "__main__":
    main()
