"""B.5's "L-BFGS-B yields no significant advantage over gradient descent" on fluid single problems.

Usage: ``python benchmarks/bench_fluid_lbfgsb.py [--iters 100] [--examples 4] [--out DIR]``.

Runs :func:`physgrad.experiments.fluid_figures.lbfgsb_vs_gd` (GD with η = 1 and scipy L-BFGS-B,
both from the drift guess, ``--iters`` iterations, on ``--examples`` problems of seed 0) and
writes ``DIR/lbfgsb.json`` (the curves) and ``DIR/README.md`` with the command, a small table
and the sentence :func:`~physgrad.experiments.fluid_figures.lbfgsb_sentence` generates from the
JSON. ``--from-json`` regenerates the README from a committed JSON without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from physgrad.experiments.fluid_figures import lbfgsb_sentence, lbfgsb_vs_gd


def readme(result: dict, command: str) -> str:
    n = result["iterations"]
    rows = []
    for name in ("GD", "L-BFGS-B"):
        r = result[name]
        marks = sorted({k for k in (1, 10, n // 2, n) if 0 < k <= n})
        rows.append(
            f"| {name} | " + " | ".join(f"{r['v0_err'][k]:.3g}" for k in marks)
            + f" | {r['objective'][n]:.3g} | {r['evaluations']:.0f} | {r['seconds']:.0f} s |"
        )
    head = " | ".join(f"v0_err after {k}" for k in marks)
    return (
        "# fluid single problems: L-BFGS-B against gradient descent (paper B.5)\n\n"
        f"```bash\n{command}\n```\n\n"
        + (f"Machine: shared 2-core CPU, {result['machine']}.\n\n" if "machine" in result else "")
        +
        f"{result['examples']} problems (seed {result['seed']}), float32 physics, both from the "
        "drift guess (at v0 = 0 the gradient is exactly zero, so neither would move), GD step "
        f"{result['gd_lr']:g}, L-BFGS-B with {result['history']} correction pairs and no "
        "tolerance stop. v0_err: the authors' velocity error (mean over problems); objective: "
        "frequency loss; evaluations: forward + backward simulations per problem. At the start "
        f"v0_err is {result['GD']['v0_err'][0]:.3g} and the objective "
        f"{result['GD']['objective'][0]:.3g}.\n\n"
        f"| solver | {head} | objective after {n} | evaluations | time (all problems) |\n"
        f"|---|{'---|' * (len(marks) + 3)}\n" + "\n".join(rows) + "\n\n"
        f"{lbfgsb_sentence(result)}\n\n(Generated from `lbfgsb.json` by "
        "`python benchmarks/bench_fluid_lbfgsb.py --from-json docs/results/fluid-lbfgsb/lbfgsb.json"
        " --out docs/results/fluid-lbfgsb`.)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/fluid-lbfgsb")
    parser.add_argument("--from-json", default=None, help="only rewrite README.md from this JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        command = result.get("command", "")
    else:
        command = (f"OMP_NUM_THREADS=1 python benchmarks/bench_fluid_lbfgsb.py --iters {args.iters}"
                   f" --examples {args.examples} --out {args.out}")
        start = time.perf_counter()
        result = lbfgsb_vs_gd(args.iters, examples=args.examples)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        result["command"] = command
        result["wall_seconds"] = time.perf_counter() - start
        result["machine"] = (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
                             f"{os.cpu_count()} cpus, load1 {load:.1f}, "
                             f"{time.strftime('%Y-%m-%d', time.gmtime())}")
        (out / "lbfgsb.json").write_text(json.dumps(result))
    (out / "README.md").write_text(readme(result, command))
    print(lbfgsb_sentence(result))


if __name__ == "__main__":
    main()
