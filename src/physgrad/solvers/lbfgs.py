"""Batched L-BFGS in pure torch: every sample runs its own L-BFGS, all in one tensor program."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import Objective, Physics, squared_error
from physgrad.solvers.base import Solver, backtrack


@dataclass(frozen=True, repr=False)
class LBFGS(Solver):
    """Limited-memory BFGS with a backtracking (Armijo) line search, batched over samples.

    Each sample keeps its own curvature history ``(s_k, y_k)`` and its own step length; the
    two-loop recursion and the line search are vectorised over the batch, so one iteration
    costs one physics call per line-search trial plus one gradient, whatever the batch size.
    Pairs with non-positive curvature ``s^T y`` are skipped per sample (the inverse-Hessian
    estimate stays positive definite), and samples whose gradient norm falls below ``gtol``
    stop moving. Runs on any device; no host synchronisation inside an iteration except the
    early-exit checks.

    **Units.** Every choice is scale-free, so rescaling ``y`` (or the objective) by ``t`` and
    ``x`` by a constant ``s`` rescales the iterates by exactly ``s`` (to round-off): the first
    trial step along ``-g`` has length ``2 L / ||g||`` (the step that would reach ``L = 0`` if
    ``L`` were quadratic along ``-g``; the Armijo search shortens it when it overshoots), later
    ones use the usual curvature estimate ``sᵀy / yᵀy``, and ``gtol`` is relative to the
    sample's initial gradient.

    Args:
        steps: maximum iterations (>= 1).
        history: number of stored curvature pairs (>= 1).
        gtol: per-sample stop when ``||dL/dx||_inf <= gtol · ||dL/dx(x0)||_inf`` (>= 0).
        max_line_search: backtracking halvings per iteration (>= 1).
        objective: per-sample objective ``(y, y_target) -> (B,)``.
    """

    steps: int = 32
    history: int = 10
    gtol: float = 1e-10
    max_line_search: int = 30
    objective: Objective = squared_error

    def __post_init__(self) -> None:
        self._store(
            steps=check_positive_int("steps", self.steps),
            history=check_positive_int("history", self.history),
            gtol=check_nonnegative_float("gtol", self.gtol),
            max_line_search=check_positive_int("max_line_search", self.max_line_search),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        shape, batch = x0.shape, x0.shape[0]

        def loss_and_grad(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            loss, grad = self.loss_and_grad(flat.reshape(shape), y_target, physics)
            return loss, grad.reshape(batch, -1)

        def loss_only(flat: torch.Tensor) -> torch.Tensor:
            return self.loss(flat.reshape(shape), y_target, physics)

        x = x0.reshape(batch, -1).clone()
        f, g = loss_and_grad(x)
        g_stop = self.gtol * g.abs().amax(dim=1)
        s_hist: list[torch.Tensor] = []
        y_hist: list[torch.Tensor] = []
        rho_hist: list[torch.Tensor] = []
        gamma = _first_step_length(f, g)[:, None]  # no curvature yet: see "Units"
        for _ in range(self.steps):
            active = g.abs().amax(dim=1) > g_stop
            if not bool(active.any()):
                break
            direction = -self._two_loop(g, s_hist, y_hist, rho_hist, gamma)
            slope = (g * direction).sum(dim=1)
            uphill = slope >= 0  # can only come from round-off; restart from steepest descent
            direction = torch.where(uphill[:, None], -gamma * g, direction)
            slope = torch.where(uphill, -(gamma.squeeze(1) * (g * g).sum(dim=1)), slope)
            direction = direction * active[:, None]

            x_new = backtrack(x, direction, f, g, loss_only, self.max_line_search - 1,
                              slope=slope, done=~active)
            moved = (x_new != x).any(dim=1)
            f_next, g_next = loss_and_grad(x_new)
            s, yv = x_new - x, g_next - g
            sy = (s * yv).sum(dim=1)
            valid = moved & (sy > torch.finfo(x.dtype).eps * s.norm(dim=1) * yv.norm(dim=1))
            rho = torch.where(valid, 1.0 / torch.where(valid, sy, torch.ones_like(sy)), 0.0)
            s_hist.append(s * valid[:, None])
            y_hist.append(yv * valid[:, None])
            rho_hist.append(rho)
            if len(s_hist) > self.history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
            yy = (yv * yv).sum(dim=1)
            gamma = torch.where(valid[:, None], (sy / yy.clamp_min(1e-300))[:, None], gamma)
            x, f, g = x_new, f_next, g_next
            yield x.reshape(shape)

    @staticmethod
    def _two_loop(g, s_hist, y_hist, rho_hist, gamma):
        q = g.clone()
        alphas = []
        for s, yv, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist), strict=True):
            a = rho * (s * q).sum(dim=1)
            q = q - a[:, None] * yv
            alphas.append(a)
        r = gamma * q
        for s, yv, rho, a in zip(s_hist, y_hist, rho_hist, reversed(alphas), strict=True):
            b = rho * (yv * r).sum(dim=1)
            r = r + s * (a - b)[:, None]
        return r


def _first_step_length(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``2 |L| / ||g||²`` per sample ``(B,)``: the factor of ``-g`` that would bring a quadratic
    ``L >= 0`` along ``-g`` to zero (exact Newton length in 1D, an overestimate otherwise,
    which the line search shortens). Units of x² / objective, so the step ``-(2|L|/||g||²) g``
    is in units of x whatever the units of y. Where it is 0 or not finite (``L = 0`` with a
    nonzero gradient, which a least-squares objective cannot have), 1 is used."""
    length = 2 * f.abs() / (g * g).sum(dim=1)
    return torch.where(torch.isfinite(length) & (length > 0), length, torch.ones_like(length))
