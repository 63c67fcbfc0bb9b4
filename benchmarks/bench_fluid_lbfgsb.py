"""B.5's "L-BFGS-B yields no significant advantage over gradient descent" on fluid single problems.

Usage: ``python benchmarks/bench_fluid_lbfgsb.py [--iters 100] [--examples 4] [--out DIR]``.

Runs :func:`lbfgsb_vs_gd` (GD with η = 1 and scipy L-BFGS-B, both from the drift guess,
``--iters`` iterations, on ``--examples`` problems of seed 0) and writes ``DIR/lbfgsb.json``
(the curves) and ``DIR/README.md`` with the command, a small table and the sentence
:func:`lbfgsb_sentence` generates from the JSON. ``--from-json`` regenerates the README from a
committed JSON without running anything. Both functions live here, not in the package: only
this study and its test (tests/test_fluid_experiment.py) use them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from physgrad._validation import check_positive_int
from physgrad.experiments.fluid_figures import V0_METRICS, drift_guess
from physgrad.problems.base import Batch
from physgrad.problems.fluid import FluidProblem
from physgrad.solvers import GradientDescent


def lbfgsb_vs_gd(
    n_iter: int, *, examples: int = 4, seed: int = 0, gd_lr: float = 1.0, history: int = 10,
    problem: FluidProblem | None = None,
) -> dict[str, Any]:
    """B.5's "L-BFGS-B yields no significant advantage over gradient descent", measured.

    On ``examples`` problems (seed ``seed``, float32 physics as in training), both from the
    drift guess (at ``v0 = 0`` the gradient vanishes, so neither moves): GD with step
    ``gd_lr`` on the batch, and ``scipy.optimize.minimize(method="L-BFGS-B")`` on each problem
    separately (``maxiter = n_iter``, ``maxcor = history``, no tolerance stop), both on the
    frequency loss with gradients from autograd through the 8-step simulator. After every
    iteration the mean over problems of ``objective``, ``v0_err`` and ``v0_l1`` is recorded
    (a problem whose L-BFGS-B run stopped early keeps its last value).

    Returns:
        ``{"GD" | "L-BFGS-B": {"objective" | "v0_err" | "v0_l1": [n_iter + 1 values],
        "evaluations": forward+backward simulations per problem, "seconds": wall time for
        all problems}, "examples", "iterations", "gd_lr", "history", "seed"}``.
    """
    import numpy as np
    import scipy.optimize

    check_positive_int("n_iter", n_iter)
    check_positive_int("examples", examples)
    problem = problem if problem is not None else FluidProblem()
    batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    x0 = drift_guess(batch, problem)
    keys = ("objective", *V0_METRICS)

    def scores(x: torch.Tensor, sub: Batch) -> dict[str, torch.Tensor]:
        m = problem.metrics(x, sub)
        return {key: m[key] for key in keys}

    # gradient descent, batched
    gd: dict[str, Any] = {key: [] for key in keys}
    physics = problem.physics(batch)
    t0 = time.perf_counter()
    for x in GradientDescent(gd_lr, n_iter, problem.objective).iterates(
        x0, batch.y_target, physics
    ):
        for key, value in scores(x, batch).items():
            gd[key].append(float(value.mean()))
    gd["seconds"] = time.perf_counter() - t0
    gd["evaluations"] = n_iter

    # L-BFGS-B, one problem at a time (scipy is serial)
    per_problem: list[dict[str, list[float]]] = []
    evaluations: list[int] = []
    t0 = time.perf_counter()
    for b in range(examples):
        sub = Batch(batch.y_target[b : b + 1], batch.x_true[b : b + 1],  # type: ignore[index]
                    batch.condition[b : b + 1])  # type: ignore[index]
        sub_physics = problem.physics(sub)
        shape = (1, *x0.shape[1:])
        trace: dict[str, list[float]] = {key: [] for key in keys}

        def fun(z: np.ndarray, sub: Batch = sub, sub_physics: Any = sub_physics,
                shape: tuple[int, ...] = shape) -> tuple[float, np.ndarray]:
            zt = torch.from_numpy(z).to(torch.float32).reshape(shape).requires_grad_(True)
            loss = problem.objective(sub_physics(zt), sub.y_target).sum()
            (grad,) = torch.autograd.grad(loss, zt)
            return float(loss.detach()), grad.reshape(-1).double().numpy()

        def log(z: np.ndarray, sub: Batch = sub, shape: tuple[int, ...] = shape,
                trace: dict[str, list[float]] = trace) -> None:
            zt = torch.from_numpy(z).to(torch.float32).reshape(shape)
            for key, value in scores(zt, sub).items():
                trace[key].append(float(value[0]))

        start = x0[b : b + 1].reshape(-1).double().numpy()
        log(start)
        res = scipy.optimize.minimize(
            fun, start, jac=True, method="L-BFGS-B", callback=log,
            options={"maxiter": n_iter, "maxcor": history, "ftol": 0.0, "gtol": 0.0},
        )
        for values in trace.values():
            values.extend([values[-1]] * (n_iter + 1 - len(values)))
        per_problem.append(trace)
        evaluations.append(int(res.nfev))
    lbfgsb: dict[str, Any] = {
        key: [float(np.mean([t[key][i] for t in per_problem])) for i in range(n_iter + 1)]
        for key in keys
    }
    lbfgsb["seconds"] = time.perf_counter() - t0
    lbfgsb["evaluations"] = float(np.mean(evaluations))
    return {"GD": gd, "L-BFGS-B": lbfgsb, "examples": examples, "iterations": n_iter,
            "gd_lr": gd_lr, "history": history, "seed": seed}


LBFGSB_ADVANTAGE = 0.9
"""L-BFGS-B "has an advantage" when its final v0_err is below this fraction of GD's."""


def lbfgsb_sentence(result: dict[str, Any]) -> str:
    """One sentence on B.5's claim, generated from :func:`lbfgsb_vs_gd`'s result."""
    n, gd, lb = result["iterations"], result["GD"], result["L-BFGS-B"]
    ratio = lb["v0_err"][-1] / gd["v0_err"][-1]
    verdict = (
        f"L-BFGS-B has an advantage in v0 ({1 / ratio:.2g}x lower v0_err)"
        if ratio < LBFGSB_ADVANTAGE
        else "L-BFGS-B has no significant advantage over gradient descent in v0 "
        f"(v0_err ratio L-BFGS-B / GD {ratio:.2f}; 'advantage' would need < {LBFGSB_ADVANTAGE})"
    )
    return (
        f"On {result['examples']} fluid problems from the drift guess, after {n} iterations "
        f"{verdict}: v0_err {gd['v0_err'][0]:.3g} -> GD {gd['v0_err'][-1]:.3g}, L-BFGS-B "
        f"{lb['v0_err'][-1]:.3g}; frequency loss {gd['objective'][0]:.3g} -> GD "
        f"{gd['objective'][-1]:.3g}, L-BFGS-B {lb['objective'][-1]:.3g}; L-BFGS-B used "
        f"{lb['evaluations']:.0f} simulations per problem (GD {gd['evaluations']}) and "
        f"{lb['seconds'] / gd['seconds']:.2g}x GD's time."
    )


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
