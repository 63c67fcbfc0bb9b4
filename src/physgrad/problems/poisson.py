"""Poisson inverse problem (paper §3.2 / B.3): find the source ``x*`` of an observed ``y* = ∇⁻²x*``.

Data follow the authors' code: ``x*`` is PhiFlow-style ``Noise`` (a random complex spectrum
with amplitude ``1/|k|²``, the lowest modes removed, real part of the inverse FFT, normalised
per sample to zero mean / unit std), ``y* = P(x*)`` with zero Dirichlet boundary and unit
cells. The physical gradient comes from the analytic inverse ``P⁻¹ = ∇²``
(:class:`PoissonInverse`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from physgrad._validation import check_choice, check_nonnegative_float, check_positive_int
from physgrad.core import InverseSolver, Physics, run_physics
from physgrad.physics.poisson import POISSON_METHODS, laplacian, poisson_solve
from physgrad.problems.base import Batch, Problem
from physgrad.solvers.base import Solver


def check_grid_shape(name: str, shape: object, ndim: int | None = None) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of positive ints (of length ``ndim`` if given)."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {shape!r}")
    if any(isinstance(n, bool) or not isinstance(n, int) for n in shape):
        raise TypeError(f"{name} must contain ints, got {shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, got {tuple(shape)}")
    if len(shape) == 0 or any(n < 1 for n in shape):
        raise ValueError(f"{name} must be non-empty with entries >= 1, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def smooth_noise(
    batch_size: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    scale: float = 10.0,
    smoothness: float = 1.0,
    size: Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """PhiFlow ``Noise(scale, smoothness)`` sampled on a grid, batched, seeded by ``generator``.

    Per sample: ``spectrum = (n₁ + i n₂) · mask / (|k|²)^smoothness`` with ``n₁, n₂ ~ N(0, 1)``
    i.i.d. per mode, ``k_d = fftfreq(N_d) · N_d / size_d · scale`` (physical frequency times
    ``scale``), ``mask = |k|² > 0.1`` (removes the mean and the lowest modes; for a 64² grid of
    unit cells those with ``n_x² + n_y² <= 4``) and the DC term zero. The field is
    ``real(IFFT(spectrum))`` divided by its (population) std, minus its mean. Randomness is
    drawn on ``generator``'s device in float64 and only then cast.

    Args:
        batch_size: samples ``B`` (>= 1).
        shape: grid ``(N_1, ..., N_d)``.
        generator: the only source of randomness.
        scale: frequency scale (PhiFlow default 10).
        smoothness: exponent on ``1/|k|²`` (PhiFlow default 1).
        size: physical domain size per axis; default ``shape`` (unit cells).
        dtype: output dtype.

    Returns:
        ``(B, *shape)`` with zero mean and unit std per sample (dimensionless).
    """
    check_positive_int("batch_size", batch_size)
    shape = check_grid_shape("shape", shape)
    check_generator(generator)
    scale = check_nonnegative_float("scale", scale, positive=True)
    smoothness = check_nonnegative_float("smoothness", smoothness)
    size = shape if size is None else tuple(float(s) for s in size)
    if len(size) != len(shape) or any(not s > 0 for s in size):
        raise ValueError(f"size must have {len(shape)} positive entries, got {tuple(size)}")
    device = generator.device
    k_squared = torch.zeros((), dtype=torch.float64, device=device)
    for d, (n, extent) in enumerate(zip(shape, size, strict=True)):
        k = torch.fft.fftfreq(n, dtype=torch.float64, device=device) * (n / extent * scale)
        view = [1] * len(shape)
        view[d] = n
        k_squared = k_squared + k.reshape(view) ** 2
    mask = k_squared > 0.1
    inv_k = torch.where(k_squared > 0, 1.0 / torch.where(k_squared > 0, k_squared, 1.0), 0.0)
    amplitude = torch.where(mask, inv_k**smoothness, 0.0)
    parts = torch.randn(
        (2, batch_size, *shape), generator=generator, dtype=torch.float64, device=device
    )
    spectrum = torch.complex(parts[0], parts[1]) * amplitude
    dims = tuple(range(1, len(shape) + 1))
    field = torch.fft.ifftn(spectrum, dim=dims).real
    std = field.std(dim=dims, correction=0, keepdim=True)
    field = torch.where(std > 0, field / torch.where(std > 0, std, 1.0), 0.0)
    field = field - field.mean(dim=dims, keepdim=True)
    return field.to(dtype)


@dataclass(frozen=True, repr=False)
class PoissonInverse(Solver):
    """Physical gradient from the analytic inverse: ``x ← x - lr · ∇²(P(x) - y*)``.

    ``∇²`` is the exact inverse of the Poisson physics ``P = ∇⁻²``, so from any ``x0`` one step
    with ``lr = 1`` lands on ``x* = ∇² y*`` up to the forward solve's accuracy (the paper's
    ``Δx = -η ∇²(y - y*)``). It costs one forward solve and one Laplacian, no adjoint solve.
    The ``physics`` argument must be this module's Poisson physics on the same grid.

    Args:
        lr: step size ``η`` (> 0), dimensionless; 1 is the exact inverse.
        steps: number of steps (>= 1).
        ndim: spatial dimensions (default 2).
    """

    lr: float = 1.0
    steps: int = 1
    ndim: int = 2

    def __post_init__(self) -> None:
        self._store(
            lr=check_nonnegative_float("lr", self.lr, positive=True),
            steps=check_positive_int("steps", self.steps),
            ndim=check_positive_int("ndim", self.ndim),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0
        for _ in range(self.steps):
            with torch.no_grad():
                y = run_physics(x, y_target, physics)
                x = x - self.lr * laplacian(y - y_target, self.ndim).to(x.dtype)
            yield x


class PoissonProblem(Problem):
    """Invert Poisson's equation ``y = ∇⁻² x`` on a grid with zero Dirichlet boundary.

    ``x`` and ``y`` have shape ``(B, *shape)``; unit cells. ``x*`` is :func:`smooth_noise`
    (unit std), ``y* = P(x*)``.

    Args:
        shape: grid, default ``(80, 60)`` (paper); the authors' code used ``(64, 64)``.
        method: ``"dst"`` (default; exact, fast) or ``"cg"`` (the authors' solver) for ``P``.
        rtol: CG relative tolerance (default ``1e-5``).
        dtype: physics/observation dtype; default float32 (the authors' Poisson precision).
        noise_scale: ``Noise`` frequency scale (10).
        smoothness: ``Noise`` smoothness (1).
    """

    name = "poisson"

    def __init__(
        self,
        shape: Sequence[int] = (80, 60),
        method: str = "dst",
        rtol: float = 1e-5,
        dtype: torch.dtype = torch.float32,
        noise_scale: float = 10.0,
        smoothness: float = 1.0,
    ):
        self.shape = check_grid_shape("shape", shape)
        self.ndim = len(self.shape)  # grid dimensions
        self.method = check_choice("method", method, POISSON_METHODS)
        self.rtol = check_nonnegative_float("rtol", rtol)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.dtype = dtype
        self.noise_scale = check_nonnegative_float("noise_scale", noise_scale, positive=True)
        self.smoothness = check_nonnegative_float("smoothness", smoothness)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = ∇⁻² x``: ``(B, *shape) -> (B, *shape)``, differentiable."""
        if tuple(x.shape[-self.ndim :]) != self.shape:
            raise ValueError(
                f"x must end with the grid shape {self.shape}, got shape {tuple(x.shape)}"
            )
        return poisson_solve(x, self.method, self.rtol, ndim=self.ndim)  # type: ignore[return-value]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``x* ~ smooth_noise`` (unit std), ``y* = P(x*)``, both ``(B, *shape)`` in ``dtype``."""
        x_true = smooth_noise(
            batch_size,
            self.shape,
            generator,
            scale=self.noise_scale,
            smoothness=self.smoothness,
            dtype=self.dtype,
        )
        with torch.no_grad():
            y_target = self.forward(x_true)
        return Batch(y_target=y_target, x_true=x_true)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """``{"inverse": PoissonInverse()}``: the analytic inverse, one step of ``η = 1``."""
        return {"inverse": PoissonInverse(ndim=self.ndim)}

    def __repr__(self) -> str:
        return (
            f"PoissonProblem(shape={self.shape}, method={self.method!r}, rtol={self.rtol}, "
            f"dtype={self.dtype})"
        )


def gd_stable_lr(shape: Sequence[int]) -> float:
    """Largest stable gradient-descent step on ``½||P(x) - y*||²``: ``2 / λ_max(PᵀP)``.

    ``λ_max(PᵀP) = 1 / λ_min(-∇²)²`` with the smallest Dirichlet eigenvalue
    ``Σ_d 4 sin²(π / (2 (N_d + 1)))``. For 80×60 this is about ``3.6e-5`` (the paper reports
    that GD needs ``η <= 2e-5``).
    """
    shape = check_grid_shape("shape", shape)
    lam_min = sum(4.0 * math.sin(math.pi / (2 * (n + 1))) ** 2 for n in shape)
    return 2.0 * lam_min**2
