"""Second-order solvers: Newton (exact per-sample Hessian) and Gauss-Newton (J^T J)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, run_objective, run_physics, squared_error
from physgrad.solvers.base import (
    Solver,
    backtrack,
    batched_jacobian,
    block_hessian,
    descent_step,
    marquardt_scaling,
)

HALVINGS = 10
"""Default number of step halvings of the Armijo backtracking in :class:`Newton` and
:class:`GaussNewton` (0 turns it off)."""

NEWTON_DAMPING = 1e-6
"""Default relative damping of :class:`Newton`: a fraction of each sample's largest |eigenvalue|."""

GAUSS_NEWTON_DAMPING = 1e-3
"""Default relative (Marquardt) damping of :class:`GaussNewton`: a fraction of ``diag(JᵀJ)``."""


class _DampedNewton:
    """What :class:`Newton` and :class:`GaussNewton` share: the settings' checks and the
    iteration ``x <- x + lr · step`` (backtracked unless ``halvings`` is 0); a subclass
    defines its fields and ``_step``, which returns the objective ``(B,)``, its gradient
    (shape of ``x``) and the undamped-``lr`` step ``(B, d)`` at ``x``."""

    def __post_init__(self) -> None:
        self._store(
            steps=check_positive_int("steps", self.steps),
            damping=check_nonnegative_float("damping", self.damping),
            lr=check_nonnegative_float("lr", self.lr, positive=True),
            relative=bool(self.relative),
            halvings=_check_halvings(self.halvings),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0
        for _ in range(self.steps):
            loss, grad, step = self._step(x, y_target, physics)
            step = self.lr * step.reshape(x.shape)
            if self.halvings:
                x = backtrack(x, step, loss, grad, lambda z: self.loss(z, y_target, physics),
                              self.halvings)
            else:
                x = x + step
            yield x


@dataclass(frozen=True, repr=False)
class Newton(_DampedNewton, Solver):
    """Damped Newton iterations ``x <- x - lr (|H| + λ I)^-1 g`` per sample.

    ``H`` is the exact Hessian of the per-sample objective w.r.t. ``x`` (forward-over-reverse
    with ``torch.func``, vmapped over coordinates, so the batch is handled in one pass).
    Negative curvature is flipped (``|H|`` via the eigen-decomposition) so every step walks
    toward a minimum, and zero-curvature directions get no step, so singular or indefinite
    Hessians never produce NaN. The cost is ``d`` Hessian-vector products for ``d = x[0].numel()``:
    meant for problems with a few to a few hundred unknowns per sample.

    **Units.** By default the damping is *relative*: ``λ = damping · max|eig(H)|`` per sample,
    so the step does not depend on the units of ``y`` or the objective, and rescaling ``x`` by
    a constant ``s`` rescales the step by exactly ``s`` (``Newton()(s x0, t y*, P_st)`` equals
    ``s · Newton()(x0, y*, P)`` to round-off, with ``P_st(x) = t P(x / s)``). Eigen-directions
    with curvature below ``damping`` times the largest get a bounded, gradient-like step
    instead of a huge one. ``relative=False`` adds ``damping`` as an absolute number, in units
    of the objective per x² (it then depends on the units).

    Args:
        steps: Newton iterations (>= 1).
        damping: Levenberg-Marquardt damping (>= 0); default ``1e-6``, relative (see Units).
        lr: step-size factor in (0, inf); 1 is the full Newton step.
        objective: per-sample objective ``(y, y_target) -> (B,)``.
        relative: ``damping`` is a fraction of the largest |eigenvalue| (default) or, if
            false, absolute.
        halvings: Armijo backtracking: each step is halved (at most this often, default 10)
            until the objective decreases enough; a sample where even the shortest step fails
            does not move. ``0`` takes the full step unconditionally (the paper's plain
            Newton step). Costs one extra physics call per trial.
    """

    steps: int = 1
    damping: float = NEWTON_DAMPING
    lr: float = 1.0
    objective: Objective = squared_error
    _: KW_ONLY
    relative: bool = True
    halvings: int = HALVINGS

    def _step(
        self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loss, grad = self.loss_and_grad(x, y_target, physics)
        hessian = block_hessian(lambda z: self.loss(z, y_target, physics), x)
        step = descent_step(hessian, grad.reshape(x.shape[0], -1), self.damping,
                            relative=self.relative)
        return loss, grad, step


@dataclass(frozen=True, repr=False)
class GaussNewton(_DampedNewton, Solver):
    """Gauss-Newton / Levenberg-Marquardt: ``x <- x - (J^T H_y J + damping I)^-1 J^T dL/dy``.

    ``J = dP/dx`` per sample (forward-mode AD, vmapped). For the default objective
    ``1/2 ||y - y*||^2`` the y-space curvature ``H_y`` is the identity, giving the classic
    ``J^T J``; for any other objective it is the objective's exact Hessian in ``y``
    (generalised Gauss-Newton), which needs ``y[0].numel()`` Hessian-vector products.
    The curvature is positive semi-definite, so steps always descend; a positive damping
    keeps them bounded where ``J`` is rank-deficient.

    **Units.** By default this is Marquardt's scale-free variant: the system
    ``(C + λ diag(C)) dx = -g`` with ``C = Jᵀ H_y J`` and ``λ = damping`` (dimensionless) is
    solved in the coordinates ``u = sqrt(diag(C)) ⊙ dx``. The step is then independent of the
    units of ``y`` and of *each component* of ``x``: rescaling ``y`` by ``t`` and ``x`` by a
    per-component ``s`` rescales the step by exactly ``s`` (to round-off). A component whose
    sensitivity is ``damping`` times smaller than its coupling to the others moves like a
    gradient step instead of jumping. ``relative=False`` adds ``damping · I`` instead, in units
    of the curvature (objective per x²), which depends on the units.

    Args:
        steps: iterations (>= 1).
        damping: Levenberg-Marquardt damping (>= 0); default ``1e-3``, relative (see Units).
        lr: step-size factor (> 0).
        objective: per-sample objective ``(y, y_target) -> (B,)``.
        relative: Marquardt's ``λ diag(C)`` (default) or, if false, an absolute ``λ I``.
        halvings: Armijo backtracking as in :class:`Newton` (default 10; ``0``: the full
            step unconditionally).
    """

    steps: int = 1
    damping: float = GAUSS_NEWTON_DAMPING
    lr: float = 1.0
    objective: Objective = squared_error
    _: KW_ONLY
    relative: bool = True
    halvings: int = HALVINGS

    def _step(
        self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = run_physics(x, y_target, physics).detach().requires_grad_(True)
        loss = run_objective(self.objective, y, y_target)
        (grad_y,) = torch.autograd.grad(loss.sum(), y)
        jac = batched_jacobian(lambda z: run_physics(z, y_target, physics), x)
        grad_x = (jac.transpose(1, 2) @ grad_y.reshape(x.shape[0], -1, 1)).squeeze(-1)
        if self.objective is squared_error:
            curvature = jac.transpose(1, 2) @ jac
        else:
            h_y = block_hessian(lambda w: self.objective(w, y_target), y.detach())
            curvature = jac.transpose(1, 2) @ h_y @ jac
        scaling = marquardt_scaling(curvature) if self.relative else None
        step = descent_step(curvature, grad_x, self.damping, scaling=scaling)
        return loss.detach(), grad_x.reshape(x.shape), step


def _check_halvings(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"halvings must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"halvings must be >= 0, got {value}")
    return value
