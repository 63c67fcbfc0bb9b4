"""Batched conjugate gradients in torch, differentiated implicitly (adjoint solve, no unrolling).

:func:`cg` solves ``A x = b`` for every sample of a batch at once, where ``A`` is a symmetric
positive-definite linear operator given as a batched callable ``matvec(v) -> A v`` that treats
samples independently. Samples that reach the tolerance stop changing while the others go on,
so each sample's iteration count is exact.

:func:`linear_solve` wraps :func:`cg` in a :class:`torch.autograd.Function` whose backward is
*another* solve with the adjoint operator: for ``x = A^{-1} b`` the vector-Jacobian product is
``grad_b = A^{-T} grad_x``. The CG iterations are never backpropagated through, so memory does
not grow with the iteration count, and the gradient is as accurate as the adjoint solve's
tolerance. The backward solve is itself a :func:`linear_solve`, so double backward works too.
Only the gradient with respect to ``b`` is provided: the operator is treated as fixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int, check_tensor

Operator = Callable[[torch.Tensor], torch.Tensor]
"""A batched linear map ``v (B, *shape) -> A v (B, *shape)`` acting on each sample separately."""


@dataclass(frozen=True)
class CGResult:
    """Outcome of a batched conjugate-gradient solve.

    Attributes:
        solution: ``(B, *shape)``, same dtype/device as the right-hand side.
        iterations: ``(B,)`` int64, CG iterations each sample needed (0 if ``x0`` already met
            the tolerance).
        residual: ``(B,)`` true relative residual ``||b - A x|| / ||b||`` at the returned
            solution (recomputed with one extra operator application, not the recursive one;
            the absolute norm where ``b = 0``).
        converged: ``(B,)`` bool, whether the recursive residual met the tolerance.
    """

    solution: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor

    @property
    def max_iterations(self) -> int:
        """Largest per-sample iteration count (what the batch as a whole cost)."""
        return int(self.iterations.max())

    @property
    def max_residual(self) -> float:
        """Largest per-sample relative residual."""
        return float(self.residual.max())


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample inner product ``(B, ...) x (B, ...) -> (B,)`` (batched matmul, no temporary)."""
    batch = a.shape[0]
    return torch.bmm(a.reshape(batch, 1, -1), b.reshape(batch, -1, 1)).reshape(batch)


def _expand(per_sample: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return per_sample.reshape(-1, *([1] * (like.dim() - 1)))


def _check_solve_args(rtol: float, atol: float, max_iter: int | None) -> tuple[float, float]:
    rtol = check_nonnegative_float("rtol", rtol)
    atol = check_nonnegative_float("atol", atol)
    if max_iter is not None:
        check_positive_int("max_iter", max_iter)
    return rtol, atol


def cg(
    matvec: Operator,
    b: torch.Tensor,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    max_iter: int | None = None,
    x0: torch.Tensor | None = None,
    warn: bool = True,
) -> CGResult:
    """Solve ``A x = b`` per sample by conjugate gradients (no autograd; see :func:`linear_solve`).

    A sample stops when its (recursive) residual satisfies
    ``||b - A x|| <= max(rtol * ||b||, atol)`` (norms over all non-batch entries), the criterion
    of PhiFlow's ``Solve('CG', rel_tol, abs_tol)``.

    Args:
        matvec: symmetric positive-definite batched operator ``v -> A v`` (shape-preserving).
        b: right-hand side ``(B, *shape)``, real floating point.
        rtol: relative tolerance (>= 0), default ``1e-5`` as in the paper's code.
        atol: absolute tolerance (>= 0).
        max_iter: iteration cap; default ``2 * n + 10`` with ``n`` the unknowns per sample
            (CG is exact after ``n`` steps in exact arithmetic).
        x0: initial guess ``(B, *shape)``; default zeros.
        warn: emit a ``RuntimeWarning`` if some sample hits ``max_iter`` unconverged.

    Returns:
        A :class:`CGResult`; ``solution`` carries no autograd history.
    """
    check_tensor("b", b)
    if b.is_complex():
        raise TypeError(f"b must be a real floating-point tensor, got dtype {b.dtype}")
    rtol, atol = _check_solve_args(rtol, atol, max_iter)
    if max_iter is None:
        max_iter = 2 * b[0].numel() + 10
    with torch.no_grad():
        b = b.detach()
        if x0 is None:
            x = torch.zeros_like(b)
            r = b.clone()
        else:
            if not isinstance(x0, torch.Tensor) or x0.shape != b.shape:
                got = tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__
                raise ValueError(f"x0 must have the shape of b {tuple(b.shape)}, got {got}")
            x = x0.detach().to(b.dtype).clone()
            r = b - matvec(x)
        b_norm = _dot(b, b).sqrt()
        threshold_sq = torch.clamp(rtol * b_norm, min=atol) ** 2
        p = r.clone()
        rs = _dot(r, r)
        active = rs > threshold_sq
        iterations = torch.zeros(b.shape[0], dtype=torch.int64, device=b.device)
        for _ in range(max_iter):
            if not bool(active.any()):
                break
            ap = matvec(p)
            p_ap = _dot(p, ap)
            ok = active & (p_ap > 0)  # p_ap <= 0 only on breakdown (p = 0) or a non-SPD operator
            alpha = torch.where(ok, rs / torch.where(ok, p_ap, torch.ones_like(p_ap)), 0.0)
            alpha = _expand(alpha, x)
            x.addcmul_(alpha, p)
            r.addcmul_(alpha, ap, value=-1.0)
            rs_new = _dot(r, r)
            beta = torch.where(ok, rs_new / torch.where(ok, rs, torch.ones_like(rs)), 0.0)
            p.mul_(_expand(beta, p)).add_(r)
            iterations += ok.to(torch.int64)
            rs = torch.where(ok, rs_new, rs)
            active = ok & (rs_new > threshold_sq)
        converged = rs <= threshold_sq
        diff = b - matvec(x)
        true_res = _dot(diff, diff).sqrt()
        nonzero = b_norm > 0
        residual = torch.where(nonzero, true_res / torch.where(nonzero, b_norm, 1.0), true_res)
    if warn and not bool(converged.all()):
        bad = int((~converged).sum())
        warnings.warn(
            f"cg: {bad} of {b.shape[0]} sample(s) did not reach rtol={rtol}, atol={atol} in "
            f"{max_iter} iterations (max relative residual {float(residual.max()):.3g})",
            RuntimeWarning,
            stacklevel=2,
        )
    return CGResult(x, iterations, residual, converged)


class _LinearSolve(torch.autograd.Function):
    """``x = A^{-1} b`` by CG; backward ``grad_b = A^{-T} grad_x`` by a second (adjoint) solve."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        b: torch.Tensor,
        matvec: Operator,
        adjoint: Operator,
        rtol: float,
        atol: float,
        max_iter: int | None,
        info: list[CGResult] | None,
    ) -> torch.Tensor:
        result = cg(matvec, b, rtol=rtol, atol=atol, max_iter=max_iter)
        if info is not None:
            info.append(result)
        ctx.solve_args = (matvec, adjoint, rtol, atol, max_iter)
        return result.solution

    @staticmethod
    def backward(ctx: Any, grad_x: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        matvec, adjoint, rtol, atol, max_iter = ctx.solve_args
        # The adjoint system A^T g = grad_x; differentiable itself (solves with A again).
        grad_b = _LinearSolve.apply(grad_x, adjoint, matvec, rtol, atol, max_iter, None)
        return grad_b, None, None, None, None, None, None


def linear_solve(
    matvec: Operator,
    b: torch.Tensor,
    *,
    adjoint: Operator | None = None,
    rtol: float = 1e-5,
    atol: float = 0.0,
    max_iter: int | None = None,
    return_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CGResult]:
    """Differentiable batched solve ``x = A^{-1} b`` by CG with an implicit (adjoint) backward.

    The backward pass solves ``A^T g = grad_x`` with the same tolerances instead of
    backpropagating through the CG iterations (implicit differentiation of ``A x = b``).
    Gradients flow to ``b`` only; ``matvec`` must not depend on tensors that need gradients.

    Args:
        matvec: batched SPD operator ``v -> A v``.
        b: right-hand side ``(B, *shape)``.
        adjoint: ``v -> A^T v``; default ``matvec`` (symmetric ``A``, as CG requires anyway).
        rtol: as in :func:`cg`, used for both forward and adjoint solves.
        atol: as in :func:`cg`.
        max_iter: as in :func:`cg`.
        return_info: also return the forward solve's :class:`CGResult`.

    Returns:
        ``x`` ``(B, *shape)``, or ``(x, info)`` with ``return_info=True``.
    """
    check_tensor("b", b)
    rtol, atol = _check_solve_args(rtol, atol, max_iter)
    if not callable(matvec):
        raise TypeError(f"matvec must be a callable v -> A v, got {matvec!r}")
    if adjoint is not None and not callable(adjoint):
        raise TypeError(f"adjoint must be a callable v -> A^T v or None, got {adjoint!r}")
    info: list[CGResult] | None = [] if return_info else None
    x = _LinearSolve.apply(b, matvec, adjoint or matvec, rtol, atol, max_iter, info)
    if return_info:
        assert info is not None
        return x, info[0]
    return x
