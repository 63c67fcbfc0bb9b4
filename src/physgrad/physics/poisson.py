"""Poisson's equation on a regular grid: ``y = P(x) = ∇⁻² x`` with zero Dirichlet boundaries.

Conventions (those of the paper's code, PhiFlow ``CenteredGrid`` with ``extrapolation.ZERO``):

* unit cells (``dx = 1``), values at cell centres, the last ``ndim`` tensor dimensions are
  space, everything before them is batch;
* the 5-point (in 2-D; ``2·ndim + 1``-point in general) Laplacian
  ``(∇²y)_ij = y_{i+1,j} + y_{i-1,j} + y_{i,j+1} + y_{i,j-1} - 4 y_ij`` with zero ghost cells
  outside the grid (homogeneous Dirichlet);
* ``y = P(x)`` solves ``∇² y = x``. ``∇²`` is symmetric negative definite, so ``P`` is
  symmetric too and its adjoint (what backpropagation needs) is ``P`` itself.

Two solvers give ``P``:

* ``"dst"`` (default): exact direct solve by the type-I discrete sine transform, which
  diagonalises the Dirichlet Laplacian (eigenvalues ``-Σ_d 4 sin²(π m_d / (2 (N_d + 1)))``,
  ``m_d = 1..N_d``). DST-I is computed with ``torch.fft.rfft`` of the odd extension, so it runs
  batched on any device/dtype and is differentiated by ordinary autograd (it is linear).
* ``"cg"``: batched conjugate gradients on ``-∇²`` (relative tolerance ``rtol``, as the paper's
  code), differentiated implicitly by an adjoint solve (:mod:`physgrad.physics.linalg`).
"""

from __future__ import annotations

import math

import torch

from physgrad._validation import (
    check_choice,
    check_field,
    check_nonnegative_float,
    check_positive_int,
)
from physgrad.physics.linalg import CGResult, linear_solve

POISSON_METHODS = ("dst", "cg")


def dst1(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unnormalised type-I discrete sine transform along ``dim``.

    ``X_k = Σ_{n=0}^{N-1} x_n sin(π (n+1)(k+1) / (N+1))`` (scipy's ``dst(type=1)`` / 2).
    Computed as ``-Im(rfft(odd extension)) / 2`` with the odd extension
    ``[0, x, 0, -reversed(x)]`` of length ``2 (N + 1)``. Applying it twice multiplies by
    ``(N + 1) / 2``. Linear, differentiable, batched over all other dimensions.

    Args:
        x: real tensor of any shape.
        dim: axis to transform.

    Returns:
        Tensor of the shape and dtype of ``x``.
    """
    moved = x.movedim(dim, -1)
    zero = torch.zeros_like(moved[..., :1])
    ext = torch.cat([zero, moved, zero, -moved.flip(-1)], dim=-1)
    spectrum = torch.fft.rfft(ext, dim=-1)
    n = moved.shape[-1]
    return (-0.5 * spectrum.imag[..., 1 : n + 1]).movedim(-1, dim)


def laplacian_eigenvalues(
    shape: tuple[int, ...], dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Eigenvalues of the zero-Dirichlet ``2·ndim+1``-point Laplacian in DST-I order.

    ``λ_m = -Σ_d 4 sin²(π (m_d + 1) / (2 (N_d + 1)))`` for ``m_d = 0..N_d-1``; all ``< 0``.

    Args:
        shape: grid ``(N_1, ..., N_d)`` in cells.
        dtype: output dtype.
        device: output device.

    Returns:
        ``shape``-shaped tensor (units: 1/cell²).
    """
    total = torch.zeros((), dtype=dtype, device=device)
    for d, n in enumerate(shape):
        m = torch.arange(1, n + 1, dtype=dtype, device=device)
        lam = -4.0 * torch.sin(math.pi * m / (2 * (n + 1))) ** 2
        view = [1] * len(shape)
        view[d] = n
        total = total + lam.reshape(view)
    return total


def laplacian(y: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Discrete Laplacian ``∇² y`` with zero Dirichlet boundary (zero ghost cells), ``dx = 1``.

    Args:
        y: ``(*batch, *space)`` with ``ndim`` trailing spatial dimensions.
        ndim: number of spatial dimensions (default 2).

    Returns:
        ``∇² y``, same shape/dtype (units of ``y`` per cell²). Differentiable.
    """
    check_field("y", y, ndim)
    return _stencil(y, ndim, 1.0)


def _stencil(y: torch.Tensor, ndim: int, sign: float) -> torch.Tensor:
    """``sign · ∇² y`` with zero ghost cells: one scaled copy plus in-place neighbour adds."""
    out = y * (-2.0 * ndim * sign)
    for dim in range(y.dim() - ndim, y.dim()):
        n = y.shape[dim]
        if n > 1:
            out.narrow(dim, 1, n - 1).add_(y.narrow(dim, 0, n - 1), alpha=sign)
            out.narrow(dim, 0, n - 1).add_(y.narrow(dim, 1, n - 1), alpha=sign)
    return out


def poisson_solve_dst(x: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Exact ``y = ∇⁻² x`` (zero Dirichlet) by DST-I diagonalisation; see :func:`poisson_solve`.

    Args:
        x: source ``(*batch, *space)`` with ``ndim`` trailing spatial dims, unit cells.
        ndim: number of spatial dimensions.

    Returns:
        ``y`` with the shape and dtype of ``x`` (units of ``x`` × cell²).
    """
    check_field("x", x, ndim)
    dims = list(range(x.dim() - ndim, x.dim()))
    spatial = tuple(x.shape[d] for d in dims)
    coeffs = x
    for d in dims:
        coeffs = dst1(coeffs, d)
    scale = math.prod(2.0 / (n + 1) for n in spatial)  # DST-I is its own inverse up to this
    coeffs = coeffs * (scale / laplacian_eigenvalues(spatial, x.dtype, x.device))
    for d in dims:
        coeffs = dst1(coeffs, d)
    return coeffs


def poisson_solve_cg(
    x: torch.Tensor,
    rtol: float = 1e-5,
    atol: float = 0.0,
    max_iter: int | None = None,
    ndim: int = 2,
    return_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CGResult]:
    """``y = ∇⁻² x`` by batched CG on the SPD system ``(-∇²) y = -x``; see :func:`poisson_solve`.

    All leading dimensions are flattened into one batch for the solve, so each sample (and
    channel) gets its own step sizes and stopping test. The backward pass is one more CG solve
    with the same operator (``∇²`` is symmetric), never backpropagation through iterations.

    Args:
        x: source ``(*batch, *space)`` with ``ndim`` trailing spatial dims, unit cells.
        rtol: relative residual tolerance.
        atol: absolute residual tolerance.
        max_iter: iteration cap (default ``2 n + 10``).
        ndim: number of spatial dimensions.
        return_info: also return the :class:`~physgrad.physics.linalg.CGResult`.

    Returns:
        ``y`` with the shape and dtype of ``x`` (units of ``x`` × cell²), or ``(y, info)``.
    """
    check_field("x", x, ndim)
    lead, spatial = x.shape[: x.dim() - ndim], x.shape[x.dim() - ndim :]
    flat = x.reshape(-1, *spatial)

    def neg_laplacian(v: torch.Tensor) -> torch.Tensor:
        return _stencil(v, ndim, -1.0)

    y, info = linear_solve(
        neg_laplacian, -flat, rtol=rtol, atol=atol, max_iter=max_iter, return_info=True
    )
    y = y.reshape(*lead, *spatial)
    return (y, info) if return_info else y


def poisson_solve(
    x: torch.Tensor,
    method: str = "dst",
    rtol: float = 1e-5,
    *,
    atol: float = 0.0,
    max_iter: int | None = None,
    ndim: int = 2,
    return_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CGResult | None]:
    """The Poisson physics ``y = P(x) = ∇⁻² x``: solve ``∇² y = x`` with zero Dirichlet boundary.

    Args:
        x: source ``(B, *space)`` (any number of leading batch dims), real float, unit cells.
        method: ``"dst"`` (default) exact spectral solve, or ``"cg"`` conjugate gradients.
        rtol: CG relative residual tolerance ``||x - ∇²y|| <= rtol ||x||`` (ignored by DST).
        atol: CG absolute tolerance (ignored by DST).
        max_iter: CG iteration cap (ignored by DST); default ``2 n + 10``.
        ndim: number of trailing spatial dimensions (default 2).
        return_info: also return the CG :class:`~physgrad.physics.linalg.CGResult`
            (``None`` for DST).

    Returns:
        ``y`` with the shape and dtype of ``x`` (units of ``x`` × cell²), differentiable w.r.t.
        ``x``; or ``(y, info)``.
    """
    check_choice("method", method, POISSON_METHODS)
    check_nonnegative_float("rtol", rtol)
    if method == "dst":
        y = poisson_solve_dst(x, ndim)
        return (y, None) if return_info else y
    return poisson_solve_cg(x, rtol, atol, max_iter, ndim, return_info)


class Poisson(torch.nn.Module):
    """Callable physics ``x (B, *space) -> ∇⁻² x`` with fixed settings (a :data:`Physics`).

    Zero Dirichlet boundary, unit cells (``dx = 1``); see :func:`poisson_solve`.

    Args:
        method: ``"dst"`` (default, exact) or ``"cg"``.
        rtol: CG relative tolerance (default ``1e-5``, as the paper's code).
        ndim: spatial dimensions (default 2).
    """

    def __init__(self, method: str = "dst", rtol: float = 1e-5, ndim: int = 2):
        super().__init__()
        self.method = check_choice("method", method, POISSON_METHODS)
        self.rtol = check_nonnegative_float("rtol", rtol)
        self.ndim = check_positive_int("ndim", ndim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = ∇⁻² x``: ``(B, *space) -> (B, *space)``, same dtype, differentiable."""
        return poisson_solve(x, self.method, self.rtol, ndim=self.ndim)  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"method={self.method!r}, rtol={self.rtol}, ndim={self.ndim}"
