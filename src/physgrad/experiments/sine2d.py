"""``sine2d``: the ill-conditioned 2D sine problem and its scale-invariance sweep (published
paper, SIP NeurIPS 2022, Sec. 4.1; authors' sin_characterization/{train_sin,plot_sin}.py).

``f(x) = (sin v₁, v₂)``, ``v = diag(10/ξ, 10ξ) R(θ) x``, targets ``y* ~ U[-1, 1]²``, batch 100,
MLP 2-32-64-32-2 (ReLU), losses averaged over the batch; every method starts from the same
initial weights. Methods, as the authors:

- ``pg-newton`` ("SIP (Ours)"): Adam lr 1e-3 on the L1 proxy ``||x - stopgrad(x + Δx)||₁`` with
  ``Δx`` the limited Newton step (:class:`~physgrad.problems.sine2d.LimitedNewton`, 0.2);
- ``adam`` (lr 1e-3), ``sgd`` (lr 1e-2/ξ²), ``rmsprop`` (lr 3e-5): ``1/2 ||f(x) - y*||²``
  backpropagated through ``f``;
- not in the default set: ``adadelta``, ``adagrad`` (lr 3e-3, as the authors) and
  ``pg-newton-l2`` (the same Newton target with physgrad's usual L2 proxy).

:func:`sweep` reproduces the scale-invariance figure: final ``x_dist`` versus ``ξ`` (θ = 0)
and versus ``θ`` (ξ = 32).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from physgrad._validation import check_choice, check_positive_int
from physgrad.core import InverseSolver, Reduction, sum_per_sample
from physgrad.core import reduce_batch as _reduce
from physgrad.experiments.base import Experiment, MethodSpec, Result, Scale, register
from physgrad.experiments.runner import Comparison, initial_weights, run_method, write_comparison
from physgrad.io import write_text
from physgrad.nets import MLP
from physgrad.problems.base import Batch, Problem
from physgrad.problems.sine2d import Sine2DProblem
from physgrad.table import Table
from physgrad.training.methods import Method, Physical, Unsupervised, resolve_solver
from physgrad.training.optimizers import OptimizerSpec
from physgrad.training.trainer import TrainingDiverged

XI_POINTS: tuple[float, ...] = (1, 3, 5, 10, 20, 32, 48, 64)
"""Conditioning values of the sweep (at θ = 0), as the authors' plot_sin.py."""
ANGLE_POINTS: tuple[float, ...] = (0, 1, 3, 5, 10, 23, 35, 40, 45)
"""Rotations (degrees) of the sweep (at ξ = 32), as the authors' plot_sin.py."""
SWEEP_METHODS: tuple[str, ...] = ("pg-newton", "adam", "sgd", "rmsprop")


class L1Physical(Method):
    """Physical gradients with the authors' L1 proxy: ``||x - stopgrad(x_n)||₁`` per sample.

    ``x_n = solver(x, y*)``. The gradient w.r.t. ``x`` is ``sign(x - x_n)`` per component (divided
    by ``B`` for ``"mean"``): only the direction of the solver's step per output survives,
    its length does not.

    Args:
        solver: inverse solver or the name of a domain solver of the problem.
        reduction: ``"mean"`` (the authors') or ``"sum"`` over the batch.
        name: label for logs.
    """

    def __init__(
        self, solver: InverseSolver | str, reduction: Reduction = "mean", name: str = "pg-l1"
    ):
        super().__init__(reduction)
        if not (callable(solver) or isinstance(solver, str)):
            raise TypeError(f"L1Physical needs an inverse solver or a solver name, got {solver!r}")
        self.solver = solver
        self.name = name

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        solver = resolve_solver(self.solver, batch, problem)
        physics = problem.physics(batch)
        with torch.enable_grad():
            x_n = solver(x.detach().to(batch.y_target.dtype), batch.y_target, physics)
        if not isinstance(x_n, torch.Tensor) or x_n.shape != x.shape:
            raise ValueError(f"solver returned {x_n!r:.60}, expected shape {tuple(x.shape)}")
        return _reduce(sum_per_sample((x - x_n.detach().to(x.dtype)).abs()), self.reduction)


def sine2d_network(hidden: tuple[int, ...] = (32, 64, 32)) -> MLP:
    """The authors' ``dense_net(2, 2, [32, 64, 32])`` (ReLU): ``(B, 2) -> (B, 2)``."""
    return MLP(2, 2, hidden=hidden)


def make_experiment(xi: float = 10.0, angle: float = 45.0, name: str | None = None) -> Experiment:
    """The sine2d experiment for conditioning ``xi`` and rotation ``angle`` (degrees).

    The SGD learning rate is ``1e-2 / xi²`` (as the authors). ``name`` defaults to
    ``"sine2d-xi<ξ>-angle<θ>"`` so checkpoints of different settings never mix.
    """
    Sine2DProblem(xi, angle)  # validates
    xi, angle = float(xi), float(angle)
    newton = "Adam + PG (limited Newton, L1)"
    methods = {
        "pg-newton": MethodSpec(
            newton, lambda: L1Physical("newton", name="pg-newton"), OptimizerSpec("adam", 1e-3)
        ),
        "adam": MethodSpec("Adam", Unsupervised, OptimizerSpec("adam", 1e-3)),
        "sgd": MethodSpec("SGD (lr 1e-2/ξ²)", Unsupervised, OptimizerSpec("sgd", 1e-2 / xi**2)),
        "rmsprop": MethodSpec("RMSprop", Unsupervised, OptimizerSpec("rmsprop", 3e-5)),
        "adadelta": MethodSpec("Adadelta", Unsupervised, OptimizerSpec("adadelta", 3e-3)),
        "adagrad": MethodSpec("Adagrad", Unsupervised, OptimizerSpec("adagrad", 3e-3)),
        "pg-newton-l2": MethodSpec(
            "Adam + PG (limited Newton, L2)",
            lambda: Physical("newton", name="pg-newton-l2"),
            OptimizerSpec("adam", 1e-3),
        ),
    }
    return Experiment(
        name=name or f"sine2d-xi{xi:g}-angle{angle:g}",
        description=(
            f"(sin v1, v2), v = diag(10/xi, 10 xi) R(theta) x, xi = {xi:g}, theta = {angle:g} deg; "
            "MLP 2-32-64-32-2, batch 100"
        ),
        paper="SIP (NeurIPS 2022) Sec. 4.1, scale-invariance figure",
        scales={
            "smoke": Scale(iterations=60, batch_size=100),
            "cpu": Scale(iterations=5_000, batch_size=100),
            # the authors stop each method after 600 s of wall-clock time on a GPU instead
            "paper": Scale(iterations=100_000, batch_size=100),
        },
        problem=functools.partial(Sine2DProblem, xi=xi, angle=angle),
        network=sine2d_network,
        methods=methods,
        default_methods=SWEEP_METHODS,
        baseline="adam",
        metrics=("x_dist", "y_l2"),
        smoothing=64,
    )


SINE2D = register(make_experiment(10.0, 45.0, name="sine2d"))


def final_x_dist(values: Sequence[float], fraction: float = 0.1) -> float:
    """Mean over the last ``fraction`` of the logged values (the authors' last 10 %)."""
    if not values:
        raise ValueError("no logged values")
    tail = values[int(len(values) * (1 - fraction)):] or values[-1:]
    return float(sum(tail) / len(tail))


def sweep(
    out: Path | str = "runs/sine2d_sweep",
    *,
    iterations: int = 600,
    batch_size: int = 100,
    seed: int = 0,
    methods: Sequence[str] = SWEEP_METHODS,
    xis: Sequence[float] = XI_POINTS,
    angles: Sequence[float] = ANGLE_POINTS,
    xi_sweep_angle: float = 0.0,
    angle_sweep_xi: float = 32.0,
    resume: bool = True,
    progress: bool = True,
) -> Result:
    """Train ``methods`` for every ``ξ`` (at ``θ = xi_sweep_angle``) and every ``θ`` (at
    ``ξ = angle_sweep_xi``): the scale-invariance figure's data.

    Each setting is a comparison (as :func:`~physgrad.experiments.compare`: ``results.md``,
    one folder per method) in ``out/xi<ξ>_angle<θ>``, with the same seed, so
    the same initial weights and target stream everywhere; finished runs are reused when
    ``resume`` (a folder holding longer runs is reused as is: use a fresh ``out`` for a
    shorter sweep). A run that diverges (NaN) is recorded as NaN and left out of the plot.

    The final value per run is the mean ``x_dist`` over the last 10 % of iterations; the ξ
    panel divides it by ξ (the authors' "relative x-distance"), the θ panel does not (as the
    authors' plot_sin.py). Cost: ``len(xis) + len(angles)``
    settings x ``len(methods)`` runs of ``iterations`` steps (about 1-3 ms a step on a CPU).

    Writes ``out/sweep.json`` and ``out/sweep.md``.

    Returns:
        The figures, for :func:`physgrad.report.figures.render` into ``out``: ``sweep.png``
        (:class:`Sweep`, whose ``values`` are ``{"xi": {"points": [...], "values": {method:
        [...]}}, "angle": {...}, ...}``) and each setting's ``curves.png``.
    """
    check_positive_int("iterations", iterations)
    methods = list(methods)
    if not methods:
        raise ValueError("no methods given")
    for m in methods:
        check_choice("sine2d method", m, SINE2D.method_names())
    if not xis and not angles:
        raise ValueError("nothing to sweep: xis and angles are both empty")
    out = Path(out)
    figures: dict[str, Any] = {}

    @functools.cache  # a setting in both sweeps (xi 32, angle 0) is trained once
    def final(xi: float, angle: float) -> dict[str, float]:
        exp = make_experiment(xi, angle)
        folder = out / f"xi{xi:g}_angle{angle:g}"
        init = initial_weights(exp, seed, folder / "init.pt")
        histories, finals = {}, {}
        for m in methods:
            try:
                histories[m] = run_method(
                    exp, m, folder, iterations=iterations, batch_size=batch_size,
                    seed=seed, init=init, resume=resume, progress=False,
                )
                finals[m] = final_x_dist(histories[m]["x_dist"])
            except TrainingDiverged as exc:  # a diverged baseline is a result, not a crash
                finals[m] = math.nan
                if progress:
                    print(f"sine2d sweep xi={xi:g} angle={angle:g}: {m} diverged: {exc}")
        if histories:
            comparison = Comparison(exp, histories, folder, iterations, seed)
            write_comparison(comparison)
            figures.update({f"{folder.name}/{name}": figure
                            for name, figure in comparison.result.figures.items()})
        if progress:
            vals = ", ".join(f"{m} {v:.3g}" for m, v in finals.items())
            print(f"sine2d sweep xi={xi:g} angle={angle:g}: final x_dist {vals}", flush=True)
        return finals

    result: dict[str, Any] = {
        "iterations": iterations, "batch_size": batch_size, "seed": seed, "methods": methods,
        "labels": {m: SINE2D.methods[m].label for m in methods},
        "xi": {"angle": xi_sweep_angle, "points": list(xis), "values": {m: [] for m in methods},
               "relative": True},
        "angle": {"xi": angle_sweep_xi, "points": list(angles),
                  "values": {m: [] for m in methods}, "relative": False},
    }
    for xi in xis:
        f = final(xi, xi_sweep_angle)
        for m in methods:
            result["xi"]["values"][m].append(f[m] / float(xi))
    for angle in angles:
        f = final(angle_sweep_xi, angle)
        for m in methods:
            result["angle"]["values"][m].append(f[m])
    write_text(out / "sweep.json", json.dumps(result, indent=2))
    write_text(out / "sweep.md", _sweep_markdown(result))
    return Result(figures={"sweep.png": Sweep(result), **figures})


@dataclass
class Sweep:
    """Figure data of the scale-invariance sweep (``sweep.png``, drawn by
    :func:`physgrad.report.scale_invariance.plot_sweep`): :func:`sweep`'s values."""

    values: dict[str, Any]


def _sweep_markdown(result: dict[str, Any]) -> str:
    methods = result["methods"]
    lines = [
        f"# sine2d scale-invariance sweep ({result['iterations']} iterations, batch "
        f"{result['batch_size']}, seed {result['seed']})",
        "",
        "Final x_dist = mean over the last 10 % of iterations of ||x - x*_closest||₂.",
        "",
    ]
    for key, what in (("xi", "x_dist / ξ"), ("angle", "x_dist")):
        part = result[key]
        if not part["points"]:
            continue
        fixed = (f"θ = {part['angle']:g}°" if key == "xi" else f"ξ = {part['xi']:g}")
        rows = [[f"{p:g}", *(f"{part['values'][m][i]:.3g}" for m in methods)]
                for i, p in enumerate(part["points"])]
        lines += [f"## {what} vs {'ξ' if key == 'xi' else 'θ (degrees)'} ({fixed})", "",
                  Table([key, *methods], rows).markdown(), ""]
    lines.append("![sweep](sweep.png)")
    return "\n".join(lines) + "\n"
