"""Paper Fig. 2a: GD, Newton and PG trajectories on ``L = ||y||^2`` with ``y = (x1, x2^2)``.

From the start ``x = (3, 3)`` the three methods minimise the same ``L = x1^2 + x2^4``:

* GD:     ``x <- x - lr (2 x1, 4 x2^3)``              (``physgrad.solvers.GradientDescent``)
* Newton: ``x <- x - lr (x1, x2 / 3)``                (``physgrad.solvers.Newton``, exact Hessian)
* PG:     step in y space ``z = (x1, x2^2)``, ``z <- z - lr z``, map back ``x = (z1, sqrt(z2))``
          (``physgrad.solvers.Analytic``; a straight line towards ``y = 0`` in y space).

Solid lines are the infinitesimal-step paths, traced by midpoint (RK2) steps of a fixed small
arc length ``FLOW_ARC`` along each method's update direction (capped at ``lr = FLOW_LR_CAP``
near the minimum, where the directions become short), so every part of every path is resolved
equally well whatever the method's speed; circles are the first 10 iterates with a constant
step size.
The constant step sizes follow the authors' ``plot_trajectories_2d.py``: GD ``0.5/36``, so
its first step moves x2 halfway from 3 to 1.5 (the x2 gradient at the start is
``4 * 27 = 108``; any ``lr > 1/36`` jumps past ``x2 = 0``), Newton ``0.5`` and PG ``0.5`` (each
step halves the remaining distance in the quadratic model / in y space). With these, all 10
circles of every method stay inside the plot and are visibly apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path

import numpy as np
import torch

from physgrad.experiments.base import FigureExperiment, Result, register
from physgrad.solvers import Analytic, GradientDescent, Newton

START = (3.0, 3.0)
FIXED_STEPS = 10
FIXED_LR = {"GD": 0.5 / 36, "Newton": 0.5, "PG": 0.5}
"""Constant step sizes of the circles (first 10 iterates)."""
FLOW_ARC = 0.02
FLOW_LR_CAP = 0.1
FLOW_TOL = 0.005
FLOW_MAX_STEPS = 1000
"""Solid lines: arc length per step, largest step size, stop radius around the minimum, and
step limit (GD crawls along x2 = 0 near the end and is stopped by it)."""

Step = Callable[[torch.Tensor], torch.Tensor]


def physics(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2) -> (B, 2)``: ``y = (x1, x2^2)``."""
    return torch.stack([x[:, 0], x[:, 1] ** 2], dim=1)


def objective(y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
    """``L = ||y - y*||^2`` per sample (no factor 1/2, as in the paper's figure), ``(B,)``."""
    return ((y - y_target) ** 2).sum(dim=1)


def _pg_inverse(lr: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def pg_step(x0: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        z = physics(x0)
        z = z - lr * (z - y_target)  # one GD step on ||y||^2 in y space, direction -z
        return torch.stack([z[:, 0], torch.sign(x0[:, 1]) * z[:, 1].clamp_min(0).sqrt()], 1)

    return pg_step


def make_steps(lrs: dict[str, float]) -> dict[str, Step]:
    """One update ``x (1, 2) -> x (1, 2)`` per method, built from physgrad's solvers."""
    solvers = {
        "GD": GradientDescent(lr=lrs["GD"], objective=objective),
        "Newton": Newton(lr=lrs["Newton"], objective=objective, damping=0.0, halvings=0),
        "PG": Analytic(_pg_inverse(lrs["PG"]), name="pg_step"),
    }
    return {
        name: (lambda x, s=s: s(x, torch.zeros_like(x), physics)) for name, s in solvers.items()
    }


def make_directions() -> dict[str, Step]:
    """The infinitesimal update direction ``d(x) = lim (x - step_lr(x)) / lr`` per method.

    Closed forms (``tests/test_toy.py`` checks them against the solvers of :func:`make_steps`);
    calling the solvers for each of the ~1000 tiny steps would be 10x slower (``Newton``
    builds a Hessian with ``torch.func`` per call) without changing the curves.
    """
    return {
        "GD": lambda x: torch.stack([2 * x[:, 0], 4 * x[:, 1] ** 3], dim=1),
        "Newton": lambda x: torch.stack([x[:, 0], x[:, 1] / 3], dim=1),
        "PG": lambda x: torch.stack([x[:, 0], x[:, 1] / 2], dim=1),  # d/dlr of the y-space step
    }


def trajectory(step: Step, steps: int, start: tuple[float, float] = START) -> np.ndarray:
    """Iterate ``step`` from ``start``: returns ``(steps + 1, 2)`` points including the start."""
    x0 = torch.tensor([start], dtype=torch.float64)
    points = accumulate(repeat(None, steps), lambda x, _: step(x), initial=x0)
    return torch.cat(list(points)).numpy()


def flow(
    direction: Step,
    arc: float = FLOW_ARC,
    lr_cap: float = FLOW_LR_CAP,
    tol: float = FLOW_TOL,
    max_steps: int = FLOW_MAX_STEPS,
    start: tuple[float, float] = START,
) -> np.ndarray:
    """Integrate ``dx/dt = -d(x)`` from ``start`` until ``|x| < tol``: ``(n, 2)`` points.

    Midpoint rule with step ``tau = min(arc / |d(x)|, lr_cap)``: each step covers about
    ``arc`` in x (less near the minimum).
    """
    x = torch.tensor([start], dtype=torch.float64)
    points = [x[0].clone()]
    for _ in range(max_steps):
        if float(x.norm()) < tol:
            break
        d = direction(x)
        tau = min(arc / max(float(d.norm()), 1e-300), lr_cap)
        x = x - tau * direction(x - 0.5 * tau * d)
        points.append(x[0].clone())
    return torch.stack(points).numpy()


@dataclass
class ToyTrajectories:
    """Figure data of Fig. 2a (``toy_trajectories.png``, drawn by
    :func:`physgrad.report.plots.plot_toy`): per method (``"GD"``, ``"Newton"``, ``"PG"``)
    the infinitesimal-step path ``flow`` (see :func:`flow`; its last point is where the
    method ends) and the iterates ``fixed`` of the constant step sizes :data:`FIXED_LR`,
    each ``(n, 2)``."""

    flow: dict[str, np.ndarray]
    fixed: dict[str, np.ndarray]


def toy_trajectories() -> ToyTrajectories:
    """Every method's trajectories from :data:`START` (:data:`FIXED_STEPS` + 1 fixed iterates)."""
    fixed, directions = make_steps(FIXED_LR), make_directions()
    return ToyTrajectories(
        flow={name: flow(directions[name]) for name in FIXED_LR},
        fixed={name: trajectory(fixed[name], FIXED_STEPS) for name in FIXED_LR},
    )


def _make(out_dir: Path, scale: str = "cpu", progress: bool = False) -> Result:
    del out_dir, scale, progress  # the figure costs well under a second at any scale
    return Result(figures={"toy_trajectories.png": toy_trajectories()})


TOY = register(
    FigureExperiment(
        name="toy",
        description="L = ||y||^2, y = (x1, x2^2): GD, Newton and PG trajectories from (3, 3)",
        paper="Sec. 2, Fig. 2a",
        make=_make,
    )
)
