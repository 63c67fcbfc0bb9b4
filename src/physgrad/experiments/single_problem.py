"""Single-problem optimisation (paper Fig. 4b / 5b): iterative solvers on a few examples.

Starting from ``x0 = 0``, each optimiser works on ``x`` directly (no network) for ``n_iter``
iterations on ``examples`` problems drawn from a :class:`~physgrad.problems.Problem`:

* ``GD``: ``x ← x − η ∇L`` with the given step ``η`` (units x² / objective),
  :class:`~physgrad.solvers.GradientDescent`;
* ``Adam``: :class:`~physgrad.solvers.Adam` on ``x`` (elementwise, so the examples stay
  independent);
* ``L-BFGS-B``: :class:`~physgrad.solvers.ScipyLBFGSB` run per example (no tolerance stop),
  one curve point per scipy iteration (the iterate after each accepted step, read off scipy's
  ``callback``); a run that stops early (converged) keeps its last value;
* ``Inverse``: the problem's inverse-physics solver applied once per iteration
  (e.g. :class:`~physgrad.problems.poisson.PoissonInverse`,
  :class:`~physgrad.problems.heat.HeatInverse`).

The curves are the solvers' :meth:`~physgrad.solvers.base.Solver.iterates`.

``L(x) = problem.objective(P(x), y*)`` (``½‖P(x) − y*‖²`` summed over cells, per example).
All arithmetic runs in float64 so the curves show each method's convergence rather than
float32 round-off. Recorded per iteration (``n_iter + 1`` values, index 0 = ``x0``), as the
mean over examples: ``x_l1 = ‖x − x*‖₁`` (summed over cells, units of x) and ``objective``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from pathlib import Path

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import InverseSolver, run_physics, sum_per_sample
from physgrad.experiments.base import Result
from physgrad.io import write_text
from physgrad.problems.base import Batch, Problem
from physgrad.solvers import Adam, GradientDescent, ScipyLBFGSB
from physgrad.table import Table


@dataclass
class SingleProblemCurves:
    """Convergence curves of several optimisers on the same examples.

    Attributes:
        problem: ``repr`` of the problem.
        examples: number of examples averaged.
        seed: data seed of the examples.
        settings: per-method settings (learning rates, solver repr), for the record.
        x_l1: ``{method: [n_iter + 1]}`` mean ``‖x − x*‖₁`` per iteration.
        objective: ``{method: [n_iter + 1]}`` mean objective per iteration.
        seconds: ``{method: wall-clock seconds for all iterations and examples}``.
        final: ``{method: x after the last iteration}``, each ``(examples, *x_shape)``
            float64 (not in the JSON; for reconstruction figures, paper Fig. 12).
        title: the figure's title (not in the JSON). The curves are also the figure's data:
            :func:`physgrad.report.plots.plot_single_problem_curves` draws them.
    """

    problem: str
    examples: int
    seed: int
    settings: dict[str, str] = field(default_factory=dict)
    x_l1: dict[str, list[float]] = field(default_factory=dict)
    objective: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    final: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    title: str = ""

    @property
    def n_iter(self) -> int:
        return len(next(iter(self.x_l1.values()))) - 1

    def markdown_table(self, at: tuple[int, ...] = (0, 1, 10, 100)) -> str:
        """``x_l1`` and objective of each method after the iterations ``at`` (if reached)."""
        its = [i for i in at if i <= self.n_iter]
        table = Table(["method", *(f"x_l1 @{i}" for i in its), *(f"objective @{i}" for i in its)])
        for name in self.x_l1:
            table.add(name, *(f"{self.x_l1[name][i]:.3g}" for i in its),
                      *(f"{self.objective[name][i]:.3g}" for i in its))
        return table.markdown()


def single_problem_curves(
    problem: Problem,
    n_iter: int,
    out_path: Path | str | None = None,
    *,
    gd_lr: float,
    adam_lr: float,
    inverse: InverseSolver | None = None,
    examples: int = 4,
    seed: int = 0,
    title: str | None = None,
    inverse_label: str | None = None,
    batch: Batch | None = None,
) -> SingleProblemCurves:
    """Run GD, Adam, L-BFGS-B and the inverse solver from ``x0 = 0`` on ``examples`` problems.

    Args:
        problem: the inverse problem; its ``sample`` draws the examples and ``physics``
            (float64) evaluates ``P``. ``x`` has the shape of ``x_true``: ``(B, *x_shape)``.
        n_iter: iterations per method (>= 1).
        out_path: if given, the figure's PNG path: the numbers are written next to it as
            ``<stem>.json`` (the curves are the figure's data; the report draws them).
        gd_lr: gradient-descent step ``η`` (> 0).
        adam_lr: Adam learning rate on ``x`` (> 0), units of x per step.
        inverse: one step of the problem's inverse solver; default
            ``problem.solvers(batch)["inverse"]``.
        examples: number of examples ``B`` averaged (paper: 4).
        seed: seed of the example generator.
        title: figure title (default: the problem's name).
        inverse_label: how the inverse solver is described in the legend (default its repr).
        batch: solve these problems instead of drawing ``examples`` with ``seed`` (e.g. the
            test batch the networks are shown on); cast to float64.

    Returns:
        The curves (:class:`SingleProblemCurves`).
    """
    check_positive_int("n_iter", n_iter)
    check_positive_int("examples", examples)
    gd_lr = check_nonnegative_float("gd_lr", gd_lr, positive=True)
    adam_lr = check_nonnegative_float("adam_lr", adam_lr, positive=True)
    if batch is None:
        batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    if inverse is None:
        inverse = problem.solvers(batch)["inverse"]
    batch = _float64(batch)
    examples = len(batch)
    if batch.x_true is None:
        raise ValueError("single-problem curves need x_true to measure ||x - x*||_1")
    physics = problem.physics(batch)

    def evaluate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_l1, objective)`` per example, both ``(B,)``."""
        with torch.no_grad():
            y = run_physics(x, batch.y_target, physics)
            return (
                sum_per_sample((x - batch.x_true).abs()),  # type: ignore[operator]
                problem.objective(y, batch.y_target),
            )

    x0 = torch.zeros_like(batch.x_true)
    result = SingleProblemCurves(repr(problem), examples, seed, title=title or problem.name)
    objective = problem.objective
    gd = GradientDescent(gd_lr, n_iter, objective)
    adam = Adam(adam_lr, n_iter, objective)
    lbfgsb = ScipyLBFGSB(n_iter, ftol=0.0, gtol=0.0, objective=objective)
    result.settings = {
        "GD": f"lr={gd_lr:.3g}",
        "Adam": f"lr={adam_lr:.3g}",
        "L-BFGS-B": f"scipy, maxcor={lbfgsb.history}",
        "Inverse": inverse_label or repr(inverse),
    }

    def inverse_step(x: torch.Tensor, _: None) -> torch.Tensor:
        with torch.enable_grad():
            return inverse(x, batch.y_target, physics).to(x.dtype).detach()

    runners: dict[str, Callable[[], list[torch.Tensor]]] = {
        "GD": lambda: list(gd.iterates(x0, batch.y_target, physics)),
        "Adam": lambda: list(adam.iterates(x0, batch.y_target, physics)),
        "L-BFGS-B": lambda: _per_example(lbfgsb, problem, batch, x0, n_iter),
        "Inverse": lambda: list(accumulate(repeat(None, n_iter), inverse_step, initial=x0)),
    }

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add sync cost (10-100x on a
    try:  # loaded 2-core machine); restored below
        for name, run in runners.items():
            start = time.perf_counter()
            iterates = run()
            result.seconds[name] = time.perf_counter() - start
            values = [evaluate(x) for x in iterates]
            result.x_l1[name] = [float(v[0].mean()) for v in values]
            result.objective[name] = [float(v[1].mean()) for v in values]
            result.final[name] = iterates[-1]
    finally:
        torch.set_num_threads(threads)
    if out_path is not None:
        shown = {k: v for k, v in vars(result).items() if k not in ("final", "title")}
        write_text(Path(out_path).with_suffix(".json"), json.dumps(shown, indent=1))
    return result


def single_problem_figure(
    title: str, solve: Callable[[int, Path], SingleProblemCurves]
) -> Callable[[Path, str, bool], Result]:
    """The ``make`` of a single-problem figure experiment (``heat-optim``, ``poisson-optim``):
    ``solve(n_iter, png_path)`` for 10 iterations at smoke scale, else 100, and a
    ``results.md`` titled ``title`` with the curves' table."""

    def make(out_dir: Path, scale: str = "cpu", progress: bool = False) -> Result:
        del progress  # a few seconds
        out_dir = Path(out_dir)
        curves = solve(10 if scale == "smoke" else 100, out_dir / "single_problem.png")
        table = curves.markdown_table()
        write_text(out_dir / "results.md", f"# {title}\n\nMean over {curves.examples} examples, "
                   f"seed {curves.seed}, from x0 = 0.\n\n{table}\n\n"
                   "![curves](single_problem.png)\n")
        return Result(figures={"single_problem.png": curves}, table=table)

    return make


def _float64(batch: Batch) -> Batch:
    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(torch.float64)

    return Batch(cast(batch.y_target), cast(batch.x_true), batch.condition)  # type: ignore[arg-type]


def _per_example(
    solver: ScipyLBFGSB, problem: Problem, batch: Batch, x0: torch.Tensor, n_iter: int
) -> list[torch.Tensor]:
    """The solver's iterates on each example alone (its physics may be bound to the example's
    condition), each padded with its last point to ``n_iter + 1``, stacked ``(B, *x_shape)``."""
    per_example = []
    for b in range(len(batch)):
        example = batch[b : b + 1]
        trace = list(solver.iterates(x0[b : b + 1], example.y_target,
                                     problem.physics(example)))[: n_iter + 1]
        per_example.append(trace + [trace[-1]] * (n_iter + 1 - len(trace)))
    return [torch.cat(points) for points in zip(*per_example, strict=True)]
