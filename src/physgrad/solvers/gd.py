"""First-order solvers on ``x``: gradient descent (with ``lr=1, steps=1`` the proxy loss equals
backprop) and Adam (the first-order optimiser of the paper's single-problem comparisons)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, squared_error
from physgrad.solvers.base import Solver


@dataclass(frozen=True, repr=False)
class GradientDescent(Solver):
    """``steps`` iterations of ``x <- x - lr * dL/dx`` with ``L = objective(physics(x), y*)``.

    With ``lr=1, steps=1`` the physical gradient equals the plain gradient, so training on
    :func:`physgrad.physical_gradient_loss` is identical to backpropagating through the
    physics (Theorem 1 of the paper).

    Args:
        lr: step size (> 0), in units of x² / objective.
        steps: number of iterations (>= 1).
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    lr: float = 1.0
    steps: int = 1
    objective: Objective = squared_error

    def __post_init__(self) -> None:
        self._store(
            lr=check_nonnegative_float("lr", self.lr, positive=True),
            steps=check_positive_int("steps", self.steps),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0
        for _ in range(self.steps):
            _, grad = self.loss_and_grad(x, y_target, physics)
            x = x - self.lr * grad
            yield x


@dataclass(frozen=True, repr=False)
class Adam(Solver):
    """``steps`` iterations of :class:`torch.optim.Adam` (default betas and eps) on ``x``.

    The gradient is that of the per-sample objective ``L = objective(physics(x), y*)``; Adam
    acts elementwise, so every sample of the batch runs its own Adam. Its step is about ``lr``
    per component whatever the gradient's size, so ``lr`` is in units of x.

    Args:
        lr: learning rate (> 0), units of x per step.
        steps: number of iterations (>= 1).
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    lr: float
    steps: int = 1
    objective: Objective = squared_error

    __post_init__ = GradientDescent.__post_init__  # the same checks

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=self.lr)
        for _ in range(self.steps):
            _, grad = self.loss_and_grad(x, y_target, physics)
            optimizer.zero_grad(set_to_none=True)
            x.grad = grad
            optimizer.step()
            yield x.detach().clone()  # the optimizer updates x in place
