"""Second-order solvers: Newton (exact per-sample Hessian) and Gauss-Newton (J^T J)."""

from __future__ import annotations

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, run_physics, squared_error
from physgrad.solvers.base import Solver, batched_jacobian, block_hessian, descent_step


class Newton(Solver):
    """Damped Newton iterations ``x <- x - lr (|H| + damping I)^-1 g`` per sample.

    ``H`` is the exact Hessian of the per-sample objective w.r.t. ``x`` (forward-over-reverse
    with ``torch.func``, vmapped over coordinates, so the batch is handled in one pass).
    Negative curvature is flipped (``|H|`` via the eigen-decomposition) so every step walks
    toward a minimum, and zero-curvature directions get no step, so singular or indefinite
    Hessians never produce NaN. The cost is ``d`` Hessian-vector products for ``d = x[0].numel()``:
    meant for problems with a few to a few hundred unknowns per sample.

    Args:
        steps: Newton iterations (>= 1).
        damping: Levenberg-Marquardt damping added to every |eigenvalue| (>= 0).
        lr: step-size factor in (0, inf); 1 is the full Newton step.
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    def __init__(
        self,
        steps: int = 1,
        damping: float = 0.0,
        lr: float = 1.0,
        objective: Objective = squared_error,
    ):
        self.steps = check_positive_int("steps", steps)
        self.damping = check_nonnegative_float("damping", damping)
        self.lr = check_nonnegative_float("lr", lr, positive=True)
        self.objective = objective

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = x0
        flat = (x0.shape[0], -1)

        def loss_fn(z: torch.Tensor) -> torch.Tensor:
            return self.loss(z, y_target, physics)

        for _ in range(self.steps):
            _, grad = self.loss_and_grad(x, y_target, physics)
            hessian = block_hessian(loss_fn, x)
            step = descent_step(hessian, grad.reshape(flat), self.damping)
            x = x + self.lr * step.reshape(x.shape)
        return x

    def __repr__(self) -> str:
        return f"Newton(steps={self.steps}, damping={self.damping}, lr={self.lr})"


class GaussNewton(Solver):
    """Gauss-Newton / Levenberg-Marquardt: ``x <- x - (J^T H_y J + damping I)^-1 J^T dL/dy``.

    ``J = dP/dx`` per sample (forward-mode AD, vmapped). For the default objective
    ``1/2 ||y - y*||^2`` the y-space curvature ``H_y`` is the identity, giving the classic
    ``J^T J``; for any other objective it is the objective's exact Hessian in ``y``
    (generalised Gauss-Newton), which needs ``y[0].numel()`` Hessian-vector products.
    The curvature is positive semi-definite, so steps always descend; a positive damping
    keeps them bounded where ``J`` is rank-deficient.

    Args:
        steps: iterations (>= 1).
        damping: Levenberg-Marquardt damping (>= 0), in units of the curvature.
        lr: step-size factor (> 0).
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    def __init__(
        self,
        steps: int = 1,
        damping: float = 1e-6,
        lr: float = 1.0,
        objective: Objective = squared_error,
    ):
        self.steps = check_positive_int("steps", steps)
        self.damping = check_nonnegative_float("damping", damping)
        self.lr = check_nonnegative_float("lr", lr, positive=True)
        self.objective = objective

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = x0
        batch = x0.shape[0]
        for _ in range(self.steps):
            y = run_physics(x, y_target, physics).detach().requires_grad_(True)
            loss = self.objective(y, y_target)
            (grad_y,) = torch.autograd.grad(loss.sum(), y)
            jac = batched_jacobian(lambda z: run_physics(z, y_target, physics), x)
            grad_x = (jac.transpose(1, 2) @ grad_y.reshape(batch, -1, 1)).squeeze(-1)
            if self.objective is squared_error:
                curvature = jac.transpose(1, 2) @ jac
            else:
                h_y = block_hessian(lambda w: self.objective(w, y_target), y.detach())
                curvature = jac.transpose(1, 2) @ h_y @ jac
            step = descent_step(curvature, grad_x, self.damping)
            x = x + self.lr * step.reshape(x.shape)
        return x

    def __repr__(self) -> str:
        return f"GaussNewton(steps={self.steps}, damping={self.damping}, lr={self.lr})"
