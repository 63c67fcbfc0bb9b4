"""Pressure projection on the periodic grid: exact FFT solve or batched CG with an adjoint solve.

The projection makes a staggered velocity divergence-free:

    laplace(p) = divergence(v) - mean(divergence(v)),    v <- v - gradient_to_faces(p),

with the 5-point periodic Laplacian ``laplace = divergence o gradient_to_faces`` (so the result
is discretely divergence-free), ``p`` fixed to zero mean. Pressure here is kinematic and
includes the time step (units length^2 / time), as in PhiFlow's ``make_incompressible``.

Two solvers give the same ``p``:

* ``"fft"`` (default): the Laplacian is diagonal in the discrete Fourier basis, so
  ``p_hat = div_hat / lambda(k)`` (``rfft2``), exact to round-off and differentiable by autograd.
* ``"cg"``: matrix-free conjugate gradients on ``-laplace`` (symmetric positive semi-definite),
  batched with per-sample step sizes and convergence, warm-started from a pressure guess as the
  authors do. Its gradient is *not* obtained by unrolling the iterations: the solve
  ``p = L^+ b`` is linear and self-adjoint, so the backward pass is another CG solve
  ``grad_b = L^+ grad_p`` (implicit differentiation), wrapped in a ``torch.autograd.Function``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from physgrad._validation import check_choice
from physgrad.physics.fluid import adjoints, kernel
from physgrad.physics.fluid.grid import (
    Domain,
    _fused,
    _recorded,
    check_scalar_field,
    check_vector_field,
    divergence,
    divergence_centered,
    gradient_centered,
    gradient_to_faces,
    laplace,
)

PressureMethod = Literal["fft", "cg"]
PRESSURE_METHODS = ("fft", "cg")


@dataclass(frozen=True)
class CGOptions:
    """Stopping rule of the CG pressure solve, per sample.

    CG stops for a sample once ``||r||_2 <= max(rtol * ||b||_2, atol)`` (sums over cells,
    ``b`` the mean-free right-hand side), or after ``max_iterations`` for all samples. The
    authors use PhiFlow's ``Solve('CG', rel_tol=0, abs_tol=1e-4)``; the defaults here are
    tighter because the solve feeds gradients.

    Attributes:
        rtol: relative residual tolerance.
        atol: absolute residual tolerance (units of the right-hand side, 1 / time).
        max_iterations: iteration cap (a warning-free best effort when reached).
    """

    rtol: float = 1e-6
    atol: float = 0.0
    max_iterations: int = 2000

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"CGOptions.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"CGOptions.{name} must be finite and >= 0, got {value}")
        it = self.max_iterations
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise ValueError(f"CGOptions.max_iterations must be an int >= 1, got {it!r}")


# --------------------------------------------------------------------------- FFT


def laplace_eigenvalues(
    domain: Domain, dtype: torch.dtype, device: torch.device | str | None = None
) -> torch.Tensor:
    """Eigenvalues of the periodic 5-point Laplacian on the ``rfft2`` modes, ``(ny, nx//2+1)``.

    ``lambda(ky, kx) = (2 cos(2 pi kx / nx) - 2) / dx^2 + (2 cos(2 pi ky / ny) - 2) / dy^2``
    (units 1 / length^2); only the constant mode ``(0, 0)`` is zero.

    Args:
        domain: the periodic domain (``nx``, ``ny``, ``dx``, ``dy``).
        dtype: output dtype.
        device: output device.

    Returns:
        ``(ny, nx // 2 + 1)`` real eigenvalues ``<= 0``.
    """
    kx = torch.arange(domain.nx // 2 + 1, dtype=dtype, device=device)
    ky = torch.arange(domain.ny, dtype=dtype, device=device)
    lx = (2 * torch.cos(2 * math.pi * kx / domain.nx) - 2) / domain.dx**2
    ly = (2 * torch.cos(2 * math.pi * ky / domain.ny) - 2) / domain.dy**2
    return ly.unsqueeze(-1) + lx


_INVERSE_EIGENVALUES: dict[tuple[Domain, torch.dtype, torch.device], torch.Tensor] = {}


def _inverse_eigenvalues(domain: Domain, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``1 / laplace_eigenvalues`` (0 for the constant mode), ``(ny, nx // 2 + 1)``.

    Kept per domain, dtype and device (a simulation step projects once per batch chunk: ~15
    small ops each time otherwise); only plain tensors are kept (not those made under a fake
    or inference mode).
    """
    key = (domain, dtype, torch.device(device))
    inv = _INVERSE_EIGENVALUES.get(key)
    if inv is None:
        eig = laplace_eigenvalues(domain, dtype, device)
        inv = torch.where(eig == 0, torch.zeros_like(eig), 1.0 / torch.where(eig == 0, 1.0, eig))
        if type(inv) is torch.Tensor and not inv.is_inference() and len(_INVERSE_EIGENVALUES) < 64:
            _INVERSE_EIGENVALUES[key] = inv
    return inv


def _inverse_laplace_fft(rhs: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Zero-mean ``p`` with ``laplace(p) = rhs - mean(rhs)``; ``rhs (B, ny, nx)``."""
    inv = _inverse_eigenvalues(domain, rhs.dtype, rhs.device)
    return torch.fft.irfft2(torch.fft.rfft2(rhs) * inv, s=domain.shape)


def solve_pressure_fft(rhs: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Solve the periodic Poisson equation exactly by FFT.

    Args:
        rhs: ``(B, ny, nx)`` right-hand side (its mean is removed: mean-balanced).
        domain: the periodic domain.

    Returns:
        ``(B, ny, nx)`` zero-mean ``p`` with ``laplace(p) = rhs - mean(rhs)``.
    """
    check_scalar_field("rhs", rhs, domain)
    return _inverse_laplace_fft(rhs, domain)


# --------------------------------------------------------------------------- CG


def _batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-2, -1))


def _remove_mean(a: torch.Tensor) -> torch.Tensor:
    return a - a.mean(dim=(-2, -1), keepdim=True)


@torch.no_grad()
def _cg_periodic_poisson(
    rhs: torch.Tensor, x0: torch.Tensor | None, domain: Domain, options: CGOptions
) -> tuple[torch.Tensor, int]:
    """Plain batched CG on ``-laplace(p) = -(rhs - mean)``; returns ``(p, iterations)``."""
    b = -_remove_mean(rhs)
    x = torch.zeros_like(b) if x0 is None else _remove_mean(x0.to(b))
    r = b + laplace(x, domain)  # b - A x with A = -laplace
    d = r.clone()
    rr = _batch_dot(r, r)
    tol2 = torch.clamp(options.rtol**2 * _batch_dot(b, b), min=options.atol**2)
    iterations = 0
    for iterations in range(1, options.max_iterations + 1):  # noqa: B007
        active = rr > tol2
        if not bool(active.any()):
            iterations -= 1
            break
        ad = -laplace(d, domain)
        dad = _batch_dot(d, ad)
        alpha = torch.where(active & (dad > 0), rr / torch.where(dad > 0, dad, 1.0), 0.0)
        x += alpha[:, None, None] * d
        r -= alpha[:, None, None] * ad
        rr_new = _batch_dot(r, r)
        beta = torch.where(active & (rr > 0), rr_new / torch.where(rr > 0, rr, 1.0), 0.0)
        d = r + beta[:, None, None] * d
        rr = rr_new
    return _remove_mean(x), iterations


class _PeriodicPoissonCG(torch.autograd.Function):
    """``p = L^+ rhs`` by CG; backward ``grad_rhs = L^+ grad_p`` (L symmetric: self-adjoint)."""

    @staticmethod
    def forward(  # type: ignore[override]
        rhs: torch.Tensor, x0: torch.Tensor | None, domain: Domain, options: CGOptions
    ) -> torch.Tensor:
        return _cg_periodic_poisson(rhs, x0, domain, options)[0]

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        _, _, domain, options = inputs
        ctx.domain = domain
        ctx.options = options

    @staticmethod
    def backward(ctx, grad_p: torch.Tensor):  # type: ignore[override]
        # Apply the same (differentiable) solve again, so higher derivatives also work.
        grad_rhs = _PeriodicPoissonCG.apply(grad_p, None, ctx.domain, ctx.options)
        return grad_rhs, None, None, None

    @staticmethod
    def jvp(ctx, rhs_t: torch.Tensor, x0_t, domain_t, options_t):  # type: ignore[override]
        return _cg_periodic_poisson(rhs_t, None, ctx.domain, ctx.options)[0]


def solve_pressure_cg(
    rhs: torch.Tensor,
    domain: Domain,
    x0: torch.Tensor | None = None,
    options: CGOptions | None = None,
) -> torch.Tensor:
    """Solve the periodic Poisson equation with batched CG, differentiable by an adjoint solve.

    Args:
        rhs: ``(B, ny, nx)`` right-hand side (mean-balanced internally).
        domain: the periodic domain.
        x0: optional warm start ``(B, ny, nx)`` (e.g. the previous step's pressure); it only
            changes the iteration count, never the gradient.
        options: stopping rule; default :class:`CGOptions`.

    Returns:
        ``(B, ny, nx)`` zero-mean ``p`` with ``laplace(p) ~= rhs - mean(rhs)``.
    """
    check_scalar_field("rhs", rhs, domain)
    if x0 is not None:
        check_scalar_field("x0", x0, domain)
    return _solve_cg(rhs, domain, x0, options or CGOptions())


def _solve_cg(
    rhs: torch.Tensor, domain: Domain, x0: torch.Tensor | None, options: CGOptions
) -> torch.Tensor:
    return _PeriodicPoissonCG.apply(rhs, None if x0 is None else x0.detach(), domain, options)


# --------------------------------------------------------------------------- projection


def make_incompressible(
    velocity: torch.Tensor,
    domain: Domain,
    method: PressureMethod = "fft",
    pressure_guess: torch.Tensor | None = None,
    cg_options: CGOptions | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project a staggered velocity onto its discretely divergence-free part.

    Args:
        velocity: staggered ``(B, 2, ny, nx)`` (length / time).
        domain: the periodic domain.
        method: ``"fft"`` (exact, default) or ``"cg"``.
        pressure_guess: ``(B, ny, nx)`` warm start for CG (ignored by FFT).
        cg_options: CG stopping rule.

    Returns:
        ``(velocity, pressure)``: the projected staggered field ``(B, 2, ny, nx)`` and the
        zero-mean pressure ``(B, ny, nx)``.
    """
    check_choice("method", method, PRESSURE_METHODS)
    check_vector_field("velocity", velocity, domain)
    if pressure_guess is not None:
        check_scalar_field("pressure_guess", pressure_guess, domain)
    return _make_incompressible(velocity, domain, method, pressure_guess, cg_options)


def _make_incompressible(
    velocity: torch.Tensor,
    domain: Domain,
    method: str,
    pressure_guess: torch.Tensor | None,
    cg_options: CGOptions | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    div = divergence(velocity, domain)
    if method == "fft":
        p = _inverse_laplace_fft(div, domain)
    else:
        p = _solve_cg(div, domain, pressure_guess, cg_options or CGOptions())
    if _fused(velocity) and not p.requires_grad:
        return kernel.subtract_gradient(velocity.contiguous(), p.contiguous(), domain.dx,
                                        domain.dy, False), p
    if _recorded(velocity, p):
        return adjoints.SubtractGradient.apply(velocity, p, domain.dx, domain.dy), p
    return velocity - gradient_to_faces(p, domain), p


def make_incompressible_centered(
    velocity: torch.Tensor, domain: Domain
) -> tuple[torch.Tensor, torch.Tensor]:
    """PhiFlow's projection of a *centred* velocity (used by the authors' ground-truth runs).

    Central-difference divergence (width ``2 dx``), compact 5-point Laplacian solve (FFT),
    central-difference gradient subtracted at the centres. This is *not* an exact projection
    (the wide and compact stencils differ), which is how PhiFlow behaves on a ``CenteredGrid``.

    Args:
        velocity: centred ``(B, 2, ny, nx)``.
        domain: the periodic domain.

    Returns:
        ``(velocity, pressure)``, ``(B, 2, ny, nx)`` and ``(B, ny, nx)``.
    """
    check_vector_field("velocity", velocity, domain)
    return _make_incompressible_centered(velocity, domain)


def _make_incompressible_centered(
    velocity: torch.Tensor, domain: Domain
) -> tuple[torch.Tensor, torch.Tensor]:
    p = _inverse_laplace_fft(divergence_centered(velocity, domain), domain)
    if _fused(velocity) and not p.requires_grad:
        return kernel.subtract_gradient(velocity.contiguous(), p.contiguous(), 2 * domain.dx,
                                        2 * domain.dy, True), p
    return velocity - gradient_centered(p, domain), p
