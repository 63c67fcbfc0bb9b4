"""``cube``: learn x from y = x³ (badly scaled near 0), Adam vs Adam + Gauss-Newton PG.

Registered with physgrad through the ``physgrad.experiments`` entry point of this package, so
after ``pip install -e examples/experiment_package`` it appears in ``physgrad list`` and runs
with ``physgrad compare cube --scale smoke``, ``physgrad reproduce --only cube``.
"""

from __future__ import annotations

import torch

from physgrad.experiments.base import Experiment, MethodSpec, Scale, register
from physgrad.nets import MLP
from physgrad.problems import FunctionProblem
from physgrad.solvers import GaussNewton
from physgrad.training import OptimizerSpec, Physical, Unsupervised


def cube(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2) -> (B, 2)``: y = x³ per component."""
    return x**3


def sample(batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x* uniform in [-2, 2]² and its observation y* = x*³ (float64)."""
    x = 4 * torch.rand(batch_size, 2, generator=generator, dtype=torch.float64) - 2
    return x, cube(x)


def problem() -> FunctionProblem:
    """The inverse problem: physics + data sampler."""
    return FunctionProblem(cube, sample, name="cube", dtype=torch.float64)


def network() -> MLP:
    """2 → 32 → 32 → 2 MLP."""
    return MLP(2, 2, hidden=(32, 32))


_adam = OptimizerSpec("adam", lr=1e-3)
"""The optimizer as data: recorded with each run, changed with ``--lr`` or ``--set
optimizer.methods.adam.lr=...``."""


CUBE = register(
    Experiment(
        name="cube",
        description="y = x^3 in 2D; Adam vs Adam + PG (Gauss-Newton)",
        paper="example package (not in the paper)",
        scales={"smoke": Scale(iterations=5, batch_size=16), "cpu": Scale(400, 128)},
        problem=problem,
        network=network,
        methods={
            "adam": MethodSpec("Adam", Unsupervised, _adam),
            "pg-gauss-newton": MethodSpec(
                "Adam + PG (Gauss-Newton)", lambda: Physical(GaussNewton()), _adam
            ),
        },
        default_methods=("adam", "pg-gauss-newton"),
        baseline="adam",
        metrics=("x_l1", "y_l2"),
        heldout=256,
    )
)
