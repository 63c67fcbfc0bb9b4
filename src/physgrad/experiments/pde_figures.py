"""Heat and Poisson figures as data (paper Fig. 11 / 12); :mod:`physgrad.report.pde_figures`
draws them.

After ``physgrad compare poisson --out runs/poisson`` (or ``heat``), each method folder holds a
``checkpoint.pt``; :func:`reconstructions` loads every method's final network and predicts a
fixed test batch (seed 999999 by default, the authors' Poisson plot seed): per example
``y*``, each method's simulated observation ``P(x)``, each method's prediction ``x`` and the
ground truth ``x*``. :func:`solver_comparison` puts the single-problem solvers next to the
networks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from physgrad.core import run_physics
from physgrad.experiments.base import Experiment, Result
from physgrad.experiments.runner import Comparison, trained_networks
from physgrad.io import write_text
from physgrad.problems.base import Batch
from physgrad.table import Table

TEST_SEED = 999_999
"""Test-batch seed of the authors' Poisson reconstruction plot."""


def _network_predictions(
    experiment: Experiment, root: Path, batch: Batch
) -> tuple[dict[str, torch.Tensor], str]:
    """Each trained network's prediction ``x`` ``(B, *x_shape)`` on ``batch`` by method label
    (every method with a ``<method>/checkpoint.pt`` in ``root``, in the experiment's order),
    and their training iterations (``"a/b"`` when they differ)."""
    nets = trained_networks(experiment, root, experiment.methods)
    if not nets:
        raise ValueError(f"no trained methods (checkpoint.pt) found in {str(root)!r}")
    with torch.no_grad():
        xs = {experiment.methods[m].label: net(batch) for m, net in nets.items()}
    counts = {json.loads(s.read_text()).get("iterations")
              for s in (root / m / "summary.json" for m in nets) if s.exists()}
    return xs, "/".join(str(c) for c in sorted(counts, key=str)) or "?"


@dataclass
class Reconstructions:
    """Figure data of Fig. 11 / 12 style reconstructions (``reconstructions.png``,
    :func:`physgrad.report.pde_figures.draw_reconstructions`): per method label its
    predictions ``x`` and observations ``P(x)`` on the shown test examples, and the truth."""

    experiment: str
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    """Method label -> (``x``, ``P(x)``), each ``(examples, *field_shape)``."""
    y_true: np.ndarray
    x_true: np.ndarray
    examples: list[int]
    seed: int
    iterations: str
    """Training iterations of the shown networks (``"a/b"`` when they differ)."""
    folder: str
    """Name of the comparison folder (for the title)."""


def reconstructions(
    experiment: Experiment,
    comparison_dir: Path | str,
    *,
    seed: int = TEST_SEED,
    examples: Sequence[int] = (0, 1, 2),
) -> Reconstructions:
    """Each trained network's prediction on examples of the test batch, for a grid with one
    row per example and columns ``y*``, ``P(x)`` per method, ``x`` per method, ``x*``.

    Args:
        experiment: a training experiment whose ``problem`` produces 2-D fields.
        comparison_dir: folder with ``<method>/checkpoint.pt`` (from ``compare``); every
            method with a checkpoint is shown.
        seed: test-batch seed.
        examples: which samples of the test batch to show (rows).
    """
    root, examples = Path(comparison_dir), list(examples)
    problem = experiment.problem()
    batch = problem.sample(max(examples) + 1, torch.Generator().manual_seed(seed))
    xs, iterations = _network_predictions(experiment, root, batch)
    physics = problem.physics(batch)
    with torch.no_grad():
        preds = {label: (_np(x), _np(run_physics(x, batch.y_target, physics)))
                 for label, x in xs.items()}
    return Reconstructions(experiment.name, preds, _np(batch.y_target),
                           _np(batch.x_true), examples, seed,  # type: ignore[arg-type]
                           iterations, root.name)


SOLVERS = ("GD", "L-BFGS-B", "Inverse")
"""Single-problem solvers shown next to the networks in :func:`solver_comparison`."""


def single_problem_solutions(
    experiment: Experiment, batch: Batch, n_iter: int = 100
) -> dict[str, torch.Tensor]:
    """``x`` reached by each of :data:`SOLVERS` after ``n_iter`` iterations from ``x0 = 0``
    on ``batch``, with the settings of the experiment's single-problem figure (Fig. 4b / 5b)
    and the (configured) experiment's physics.

    Returns:
        ``{solver: x}``, each ``(B, *x_shape)`` float64.
    """
    from physgrad.experiments.heat import heat_single_problem
    from physgrad.experiments.poisson import poisson_single_problem

    single = {"heat": heat_single_problem, "poisson": poisson_single_problem}
    if experiment.name not in single:
        raise ValueError(f"no single-problem solvers for experiment {experiment.name!r}; "
                         f"known: {sorted(single)}")
    curves = single[experiment.name](n_iter, batch=batch, problem=experiment.problem())
    return {name: curves.final[name] for name in SOLVERS}


@dataclass
class SolverComparison:
    """Figure data of paper Fig. 12 (top) / Fig. 11 layout (``solvers_vs_networks.png``,
    :func:`physgrad.report.pde_figures.draw_solver_comparison`): per column (single-problem
    solver or network) its ``x`` and ``P(x)`` on the shown examples, and the truth."""

    experiment: str
    columns: dict[str, tuple[np.ndarray, np.ndarray]]
    """Column title -> (``x``, ``P(x)``), each ``(len(examples), *field_shape)``."""
    y_true: np.ndarray
    x_true: np.ndarray
    examples: list[int]
    seed: int
    iterations: str
    folder: str


def solver_comparison(
    experiment: Experiment,
    comparison_dir: Path | str,
    *,
    seed: int = TEST_SEED,
    examples: Sequence[int] = (0, 1),
    n_iter: int = 100,
    table: Path | str | None = None,
) -> SolverComparison:
    """Paper Fig. 12 (top) / Fig. 11: per test example the observations ``y`` and solutions
    ``x`` of the ground truth, the single-problem solvers GD, L-BFGS-B and the inverse solver
    (``n_iter`` iterations each from ``x0 = 0``), then every trained network in
    ``comparison_dir``. Their ``L1`` errors (sums over cells) are written to ``table``
    (default ``comparison_dir/solvers_vs_networks.md``, next to the figure).

    Args:
        experiment: ``heat`` or ``poisson`` (the configured one).
        comparison_dir: folder with ``<method>/checkpoint.pt`` (from ``compare``).
        seed: test-batch seed.
        examples: which samples of the test batch to show.
        n_iter: iterations of each single-problem solver (paper: 100).
        table: Markdown file for the errors; it names the figure ``<its stem>.png``.
    """
    root, examples = Path(comparison_dir), list(examples)
    problem = experiment.problem()
    batch = problem.sample(max(examples) + 1, torch.Generator().manual_seed(seed))[examples]
    networks, iterations = _network_predictions(experiment, root, batch)
    physics = problem.physics(batch)
    xs = {f"{solver}\n({n_iter} it., $x_0 = 0$)": x
          for solver, x in single_problem_solutions(experiment, batch, n_iter).items()}
    xs.update({f"network:\n{label}": x for label, x in networks.items()})
    columns = {}
    with torch.no_grad():
        for label, x in xs.items():
            x = x.to(batch.y_target.dtype)
            columns[label] = (_np(x), _np(run_physics(x, batch.y_target, physics)))
    y_true, x_true = _np(batch.y_target), _np(batch.x_true)  # type: ignore[arg-type]
    table = Path(table) if table is not None else root / "solvers_vs_networks.md"
    figure = table.with_suffix(".png").name
    errors = Table(["column", *(f"{v}_l1 #{b}" for b in examples for v in "xy")])
    for label, (x, y) in columns.items():
        errors.add(label.replace("\n", " ").replace("$x_0 = 0$", "x0 = 0"),
                   *(f"{np.abs(v[i] - truth[i]).sum():.4g}" for i in range(len(examples))
                     for v, truth in ((x, x_true), (y, y_true))))
    write_text(table, f"# {experiment.name}: L1 errors of {figure} (test batch seed {seed})\n\n"
               f"{errors.markdown()}\n")
    return SolverComparison(experiment.name, columns, y_true, x_true, examples, seed,
                            iterations, root.name)


def pde_figures(comparison: Comparison) -> Result:
    """The ``heat`` and ``poisson`` figure hook (Fig. 11 / 12): the trained networks'
    :func:`reconstructions` of a fixed test batch and the :func:`solver_comparison` with the
    single-problem solvers (5 iterations at smoke scale, else 100)."""
    exp, out = comparison.experiment, comparison.out
    n_iter = 5 if comparison.scale == "smoke" else 100
    return Result(figures={
        "reconstructions.png": reconstructions(exp, out),
        "solvers_vs_networks.png": solver_comparison(exp, out, n_iter=n_iter),
    })


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()
