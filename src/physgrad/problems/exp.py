"""y = exp(x): the one-parameter toy of the published paper (SIP, NeurIPS 2022, exp/train_exp.py).

Invert ``y* = exp(x*)`` for ``x* = -12 * U[0, 1)``, i.e. ``x* in (-12, 0]`` and
``y* in (6.1e-6, 1]``. The inverse ``x = log(y*)`` is unique, but ``dP/dx = exp(x)`` spans five
orders of magnitude over the range, so backpropagating ``1/2 (exp(x) - y*)^2`` barely moves
predictions for small ``x*``: the scale problem in its simplest form. Units: ``x`` and ``y``
are dimensionless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import InverseSolver, Physics
from physgrad.problems.base import Batch, Problem
from physgrad.solvers import Analytic
from physgrad.solvers.base import Solver

X_RANGE = (-12.0, 0.0)
"""Range of the ground truth ``x* = -12 * U[0, 1)`` (the upper end 0 is included)."""


def exp_newton_step(x: torch.Tensor, y_target: torch.Tensor, max_step: float) -> torch.Tensor:
    """The authors' descending Newton step on ``L = 1/2 (exp(x) - y*)^2`` (exp/train_exp.py).

    ``g = (e^x - y*) e^x``, ``H = 2 e^{2x} - y* e^x`` (the exact first and second derivative),
    ``Δx = min(|g / H|, max_step) * sign(-g)``, and ``Δx = 0`` where ``H = 0`` (PhiFlow's
    ``divide_no_nan``). Taking ``|g / H|`` with the sign of ``-g`` walks downhill also where the
    objective is concave (``x < log(y*/2)``).

    Args:
        x: current guess ``(B, 1)``.
        y_target: observations ``(B, 1)``, same dtype.
        max_step: largest ``|Δx|`` (``math.inf`` for the plain descending Newton step).

    Returns:
        ``Δx``, shape of ``x``.
    """
    ex = torch.exp(x)
    grad = (ex - y_target) * ex
    hess = 2 * ex * ex - y_target * ex
    ratio = torch.where(hess == 0, torch.zeros_like(grad), grad / hess.where(hess != 0, 1.0))
    return ratio.abs().clamp_max(max_step) * torch.sign(-grad)


@dataclass(frozen=True, repr=False)
class ExpNewton(Solver):
    """One clipped, always-descending Newton step on ``1/2 (exp(x) - y*)^2``.

    Closed form (:func:`exp_newton_step`); it equals :class:`physgrad.solvers.Newton` for
    ``max_step = inf``. ``physics`` is not called (the process is fixed to ``exp``).

    Args:
        max_step: clip of ``|Δx|`` per sample, ``> 0`` (the authors' "Newton Clipped": 0.1).
    """

    max_step: float = 0.1

    def __post_init__(self) -> None:
        if self.max_step != math.inf:
            check_nonnegative_float("max_step", self.max_step, positive=True)
        self._store(max_step=float(self.max_step))

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        return x0 + exp_newton_step(x0, y_target, self.max_step)


def sign_update(x0: torch.Tensor, x_true: torch.Tensor) -> torch.Tensor:
    """The authors' "Sign" ("Rescaled" in the paper's figure) target ``x0 + sign(x* - x0)``.

    Unit-size step toward the ground truth: the direction is exact and the magnitude does not
    depend on ``dP/dx``. Shapes broadcast; ``(B, 1)`` here.
    """
    return x0 + torch.sign(x_true.to(x0.dtype) - x0)


class ExpProblem(Problem):
    """Find ``x`` with ``exp(x) = y*``; ``x``, ``y``: ``(B, 1)``, physics in float64.

    The network sees ``y*`` (float32). ``batch.x_true`` holds ``x*``; the metrics are the
    base ones: ``x_l1 = |x - x*|``, ``y_l1 = |e^x - y*|``, ``y_l2 = 1/2 (e^x - y*)^2``.

    Domain solvers (:meth:`solvers`): ``"newton"`` (:class:`ExpNewton`, clipped at 0.1),
    ``"newton-unclipped"`` and ``"sign"`` (:func:`sign_update`; reads the ground truth).
    """

    name = "exp"
    dtype = torch.float64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = exp(x)``, elementwise: ``(B, 1) -> (B, 1)``."""
        return torch.exp(x)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``x* = -12 · U[0, 1)`` and ``y* = exp(x*)``, both ``(B, 1)`` float64."""
        check_positive_int("batch_size", batch_size)
        lo, hi = X_RANGE
        x = hi + (lo - hi) * torch.rand(batch_size, 1, generator=generator, dtype=self.dtype)
        return Batch(y_target=self.forward(x), x_true=x)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        solvers: dict[str, InverseSolver] = {
            "newton": ExpNewton(0.1),
            "newton-unclipped": ExpNewton(math.inf),
        }
        x_true = batch.x_true
        if x_true is not None:
            solvers["sign"] = Analytic(lambda x0, y: sign_update(x0, x_true), name="sign")
        return solvers
