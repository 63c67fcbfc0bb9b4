"""Does a training run care about the units of x and y? Old (absolute) vs new (relative) defaults.

The physics is a badly scaled map of two unknowns (sensitivities differ by ~1e3 between the
components and across samples), ``f(a, b) = (10 a + a³, 0.01 b³ + a)``, expressed in three
systems of units: ``P(x) = t · f(x / s)`` with ``(s, t)`` in ``{(1, 1), (0.01, 100),
(100, 0.01)}``. An MLP (64, 64) in float32 maps y* to x with the units divided out,
``x = s · MLP(y* / t)`` (input/output normalisation, as own-physics.md recommends, so the
network itself is the same in every system of units and only the solver can differ), trained
with Adam (lr 1e-3, batch 32) for ``--iterations`` iterations from the same initial weights
per seed. Reported: the held-out x-error in the units of
``(s, t) = (1, 1)``, i.e. ``mean |x / s - x*|`` over 512 fixed test problems: the median over
seeds and every seed's value (``per_seed`` in ``results.json``), and on how many seeds each
method is below Adam in every system of units.

    python benchmarks/bench_units.py --seeds 0,1,2,3,4 --out docs/results/own-physics-units
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from physgrad.io import write_text
from physgrad.nets import MLP
from physgrad.solvers import LBFGS, GaussNewton, Newton
from physgrad.training import Physical, Unsupervised
from physgrad.training.methods import Method

UNITS = [(1.0, 1.0), (1e-2, 1e2), (1e2, 1e-2)]


def unit_name(s: float, t: float) -> str:
    return f"s={s:g}, t={t:g}"


def base_physics(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2) -> (B, 2)``: ``(10 a + a³, 0.01 b³ + a)``."""
    a, b = x[:, 0], x[:, 1]
    return torch.stack([10 * a + a**3, 1e-2 * b**3 + a], dim=1)


def methods() -> dict[str, Method]:
    """The compared methods: Adam, and PG with the old and the new solver defaults."""
    return {
        "adam": Unsupervised(),
        "gn old (damping 1e-4 abs)": Physical(
            GaussNewton(damping=1e-4, relative=False, halvings=0)
        ),
        "gn default": Physical(GaussNewton()),
        "newton old (damping 0)": Physical(Newton(damping=0.0, halvings=0)),
        "newton default": Physical(Newton()),
        "lbfgs(8) default": Physical(LBFGS(steps=8)),
    }


def train(method: Method, s: float, t: float, seed: int, iterations: int) -> float:
    """Held-out ``mean |x / s - x*|`` after training (float32 net, float64 physics)."""
    physics = lambda x: t * base_physics(x / s)  # noqa: E731
    torch.manual_seed(seed)
    net = MLP(2, 2, hidden=(64, 64))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    from physgrad.problems.base import Batch

    class _P:  # the methods only need physics and objective
        objective = staticmethod(lambda y, yt: 0.5 * ((y - yt) ** 2).sum(1))

        @staticmethod
        def physics(batch):
            return physics

    for _ in range(iterations):
        x_true = torch.rand(32, 2, generator=gen, dtype=torch.float64) * 1.5 + 0.25
        y = t * base_physics(x_true)
        x = s * net((y / t).float())
        loss = method.loss(x, Batch(y, x_true * s), _P)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen = torch.Generator().manual_seed(10_000)
    x_true = torch.rand(512, 2, generator=gen, dtype=torch.float64) * 1.5 + 0.25
    with torch.no_grad():
        x = s * net(base_physics(x_true).float()).double()
    err = float((x / s - x_true).abs().mean())
    return err if err == err else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-units"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(v) for v in args.seeds.split(",")]
    rows = []
    start = time.process_time()
    for name in methods():
        row: dict = {"method": name}
        per_seed = {}
        for s, t in UNITS:
            errors = []
            for seed in seeds:
                try:
                    errors.append(train(methods()[name], s, t, seed, args.iterations))
                except Exception:  # noqa: BLE001 - a diverged run counts as inf
                    errors.append(float("inf"))
            row[unit_name(s, t)] = statistics.median(errors)
            per_seed[unit_name(s, t)] = errors
        row["per_seed"] = per_seed
        rows.append(row)
        print(row, flush=True)
    adam = rows[0]["per_seed"]
    units = [unit_name(s, t) for s, t in UNITS]
    header = ["method", *units, "seeds below Adam in every system"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        errors = row["per_seed"]
        below = sum(all(errors[u][i] < adam[u][i] for u in units) for i in range(len(seeds)))
        row["seeds_below_adam"] = below
        cells = [f"{row[u]:.3g} [{min(errors[u]):.3g}, {max(errors[u]):.3g}]" for u in units]
        lines.append(f"| {row['method']} | " + " | ".join(cells)
                     + f" | {'–' if row is rows[0] else f'{below} of {len(seeds)}'} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = time.process_time() - start
    text = (
        "# Held-out x-error in three systems of units (bench_units.py)\n\n"
        f"`python benchmarks/bench_units.py --iterations {args.iterations} --seeds {args.seeds}`"
        f", {cpu:.0f} s CPU. x-error `mean |x/s - x*|` on 512 test problems, median [min, max] "
        f"over seeds {args.seeds}; P(x) = t f(x/s), x = s MLP(y/t) with a float32 MLP (64, 64), "
        "Adam lr 1e-3, batch 32.\n\n" + table + "\n"
    )
    write_text(args.out / "results.md", text)
    write_text(args.out / "results.json", json.dumps(rows, indent=2))
    print(table)


if __name__ == "__main__":
    main()
