"""Per-sample scipy L-BFGS-B: the reference solver the paper used (slow: a Python loop)."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, squared_error
from physgrad.solvers.base import Solver


class ScipyLBFGSB(Solver):
    """``scipy.optimize.minimize(method="L-BFGS-B")`` run on each sample separately.

    The reference implementation for checking :class:`LBFGS` and for reproducing the paper's
    "PG (L-BFGS-B, n=32)" runs. Gradients come from torch autograd in float64 on the CPU; the
    result is returned on the input's device and dtype. It loops over samples in Python, so
    prefer :class:`physgrad.solvers.LBFGS` for training.

    Args:
        steps: maximum L-BFGS-B iterations per sample (``maxiter``, >= 1).
        history: stored correction pairs (``maxcor``).
        ftol: scipy's stopping tolerance on the objective.
        gtol: scipy's stopping tolerance on the projected gradient.
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    def __init__(
        self,
        steps: int = 32,
        history: int = 10,
        ftol: float = 1e-12,
        gtol: float = 1e-10,
        objective: Objective = squared_error,
    ):
        self.steps = check_positive_int("steps", steps)
        self.history = check_positive_int("history", history)
        self.ftol = check_nonnegative_float("ftol", ftol)
        self.gtol = check_nonnegative_float("gtol", gtol)
        self.objective = objective

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        out = torch.empty_like(x0)
        x_cpu = x0.detach().to("cpu", torch.float64)
        y_cpu = y_target.detach().to("cpu", torch.float64)

        for b in range(x0.shape[0]):  # the one deliberate loop over samples: scipy is serial
            y_b = y_cpu[b : b + 1]
            sample_shape = (1, *x0.shape[1:])

            def fun(
                z: np.ndarray, y_b: torch.Tensor = y_b, sample_shape: tuple = sample_shape
            ) -> tuple[float, np.ndarray]:
                zt = torch.from_numpy(z).reshape(sample_shape).requires_grad_(True)
                loss = self.loss(zt, y_b, physics).sum()
                (grad,) = torch.autograd.grad(loss, zt)
                return loss.item(), grad.reshape(-1).numpy().astype(np.float64)

            result = scipy.optimize.minimize(
                fun,
                x_cpu[b].reshape(-1).numpy(),
                jac=True,
                method="L-BFGS-B",
                options={
                    "maxiter": self.steps,
                    "maxcor": self.history,
                    "ftol": self.ftol,
                    "gtol": self.gtol,
                },
            )
            out[b] = torch.from_numpy(result.x).reshape(x0.shape[1:]).to(out)
        return out

    def __repr__(self) -> str:
        return f"ScipyLBFGSB(steps={self.steps})"
