"""Per-sample scipy L-BFGS-B: the reference solver the paper used (slow: a Python loop)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, squared_error
from physgrad.solvers.base import Solver


@dataclass(frozen=True, repr=False)
class ScipyLBFGSB(Solver):
    """``scipy.optimize.minimize(method="L-BFGS-B")`` run on each sample separately.

    The reference implementation for checking :class:`LBFGS` and for reproducing the paper's
    "PG (L-BFGS-B, n=32)" runs. Gradients come from torch autograd in float64 on the CPU; the
    result is returned on the input's device and dtype. It loops over samples in Python, so
    prefer :class:`physgrad.solvers.LBFGS` for training. The physics is called on one sample
    at a time, ``(1, *x_shape)``, so it must not be bound to the batch (run a solver per
    sample for a physics that is).

    Its :meth:`iterates` are scipy's (one per accepted L-BFGS-B iteration, read off its
    ``callback``); a sample that stops before the others keeps its last point.

    Args:
        steps: maximum L-BFGS-B iterations per sample (``maxiter``, >= 1).
        history: stored correction pairs (``maxcor``).
        ftol: scipy's stopping tolerance on the objective.
        gtol: scipy's stopping tolerance on the projected gradient.
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    steps: int = 32
    history: int = 10
    ftol: float = 1e-12
    gtol: float = 1e-10
    objective: Objective = squared_error

    def __post_init__(self) -> None:
        self._store(
            steps=check_positive_int("steps", self.steps),
            history=check_positive_int("history", self.history),
            ftol=check_nonnegative_float("ftol", self.ftol),
            gtol=check_nonnegative_float("gtol", self.gtol),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x_cpu = x0.detach().to("cpu", torch.float64)
        y_cpu = y_target.detach().to("cpu", torch.float64)
        traces: list[list[np.ndarray]] = []  # each sample's iterates, x0 first, flat float64
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

            start = x_cpu[b].reshape(-1).numpy()
            trace = [start.copy()]

            def callback(xk: np.ndarray, trace: list[np.ndarray] = trace) -> None:
                trace.append(np.array(xk, dtype=np.float64))

            result = scipy.optimize.minimize(
                fun,
                start,
                jac=True,
                method="L-BFGS-B",
                callback=callback,
                options={
                    "maxiter": self.steps,
                    "maxcor": self.history,
                    "ftol": self.ftol,
                    "gtol": self.gtol,
                },
            )
            if not np.array_equal(trace[-1], result.x):  # scipy's answer is the last one
                trace.append(result.x)
            traces.append(trace)
        for i in range(1, max(len(trace) for trace in traces)):
            points = np.stack([trace[min(i, len(trace) - 1)] for trace in traces])
            yield torch.from_numpy(points).reshape(x0.shape).to(x0)
