"""Inverse heat equation (paper §3.3 / B.4): recover the initial heat sources from a blurred state.

Following the authors' code: 64×64 periodic grid of unit cells, ``ν·t = 8``, physics in float64;
``x*`` is 4–10 soft (anti-aliased) rectangles of random size, position and strength;
``y* = diffuse(x*)``. The physical gradient comes from the noise-aware inverse
:func:`~physgrad.physics.heat.inv_diffuse` (:class:`HeatInverse`). Diffusion conserves the mean,
so the experiment's network pins its prediction's mean to the observation's (:func:`fix_mean`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import InverseSolver, Physics, run_physics
from physgrad.physics.heat import DEAD_ZONE, DEFAULT_AMOUNT, NOISE_REL, diffuse, inv_diffuse
from physgrad.problems.base import Batch, Problem
from physgrad.problems.poisson import check_generator, check_grid_shape
from physgrad.solvers.base import Solver


def soft_rectangles(
    batch_size: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    min_count: int = 4,
    max_count: int = 10,
    max_half_size: float = 10.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Random heat sources: per sample ``min_count..max_count`` soft axis-aligned rectangles.

    Mirrors the authors' ``generate_heat_example`` (domain ``[0, X] × [0, Y]``, unit cells,
    cell centres at ``i + ½``), vectorised over samples and rectangles:

    * ``count = floor(min_count + (max_count - min_count + 1) · U)`` (4..10 uniformly);
    * ``max_count`` candidate rectangles, each with centre ``(U - ½) · 0.8 · size + ½ · size``
      (central 80 % of the domain), half sizes ``U · max_half_size`` per axis, strength ``U``
      (times 0 for candidates ``i >= count``), centre clipped to
      ``[half_size, size - half_size]`` so the rectangle lies inside the domain;
    * each rectangle's anti-aliased mask, PhiFlow's ``SoftGeometryMask`` (:func:`soft_box_mask`);
    * the field is the strength-weighted sum of the masks (overlaps add up).

    Args:
        batch_size: ``B`` (>= 1).
        shape: grid ``(X, Y)``.
        generator: the only source of randomness (draws on its device).
        min_count: fewest rectangles per sample (inclusive).
        max_count: most rectangles per sample (inclusive).
        max_half_size: half sizes are ``U[0, max_half_size)`` cells per axis.
        dtype: output dtype.

    Returns:
        ``(B, X, Y)`` non-negative heat density (strength units).
    """
    check_positive_int("batch_size", batch_size)
    shape = check_grid_shape("shape", shape, ndim=2)
    check_generator(generator)
    check_positive_int("min_count", min_count)
    check_positive_int("max_count", max_count)
    if min_count > max_count:
        raise ValueError(f"min_count ({min_count}) must be <= max_count ({max_count})")
    max_half_size = check_nonnegative_float("max_half_size", max_half_size)
    dev, f64 = generator.device, torch.float64

    def uniform(*dims: int) -> torch.Tensor:
        return torch.rand(dims, generator=generator, dtype=f64, device=dev)

    size = torch.tensor(shape, dtype=f64, device=dev)  # (2,)
    count = torch.floor(min_count + (max_count - min_count + 1) * uniform(batch_size))
    centre = (uniform(batch_size, max_count, 2) - 0.5) * size * 0.8 + size * 0.5
    half = uniform(batch_size, max_count, 2) * max_half_size
    index = torch.arange(max_count, dtype=f64, device=dev)
    strength = uniform(batch_size, max_count) * (index < count[:, None])
    centre = torch.minimum(torch.maximum(centre, half), size - half)
    mask = soft_box_mask(centre, half, shape)
    field = (mask * strength[..., None, None]).sum(dim=1)
    return field.to(dtype)


def soft_box_mask(
    centre: torch.Tensor, half_size: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """Anti-aliased masks of axis-aligned boxes, PhiFlow ``SoftGeometryMask(Cuboid).at(grid)``.

    ``clip(½ - sdf / r, 0, 1)`` at the cell centres ``(i + ½, j + ½)`` of a unit-cell grid, with
    the box's L∞ signed distance ``sdf = max_d(|c_d - centre_d| - half_d)`` and the cell's
    bounding radius ``r = √2 / 2``: 1 well inside, 0 well outside, linear ramp across the edge.

    Args:
        centre, half_size: ``(*lead, 2)`` in cells.
        shape: grid ``(X, Y)``.

    Returns:
        ``(*lead, X, Y)`` in ``[0, 1]``, dtype of ``centre``.
    """
    dev, dtype = centre.device, centre.dtype
    cell_radius = math.sqrt(2.0) / 2.0
    cx = torch.arange(shape[0], dtype=dtype, device=dev) + 0.5
    cy = torch.arange(shape[1], dtype=dtype, device=dev) + 0.5
    # (*lead, X) and (*lead, Y) per-axis signed distances, then the L-inf box distance.
    dist_x = (cx - centre[..., 0:1]).abs() - half_size[..., 0:1]
    dist_y = (cy - centre[..., 1:2]).abs() - half_size[..., 1:2]
    sdf = torch.maximum(dist_x[..., :, None], dist_y[..., None, :])
    return (0.5 - sdf / cell_radius).clamp(0.0, 1.0)


def fix_mean(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shift each sample of ``x`` so its spatial mean equals that of ``reference``.

    Both ``(B, X, Y)``; computed in ``reference``'s dtype (differentiable w.r.t. ``x``).
    """
    x = x.to(reference.dtype)
    dims = (-2, -1)
    return x - x.mean(dim=dims, keepdim=True) + reference.mean(dim=dims, keepdim=True)


@dataclass(frozen=True, repr=False)
class HeatInverse(Solver):
    """Physical gradient from the noise-aware inverse: ``x ← x + inv_diffuse(y* - P(x))``.

    One step per ``steps`` of the authors' ``Adam + PG`` correction (training uses 1; their
    iterative-solver comparison uses 100 with ``abs_noise=1e-8``). See
    :func:`~physgrad.physics.heat.inv_diffuse` for every constant. ``amount`` must match the
    physics (``ν·t``).

    Args:
        amount: ``ν·t`` in cells² (8).
        steps: number of correction steps (>= 1).
        rel_noise: per-cell noise std relative to ``|residual|`` (``1e-6``).
        abs_noise: per-cell absolute noise std (0).
        dead_zone: no-action band of the signal probability (``(0.5, 0.68)``).
    """

    amount: float = DEFAULT_AMOUNT
    steps: int = 1
    rel_noise: float = NOISE_REL
    abs_noise: float = 0.0
    dead_zone: tuple[float, float] = DEAD_ZONE

    def __post_init__(self) -> None:
        self._store(
            amount=check_nonnegative_float("amount", self.amount),
            steps=check_positive_int("steps", self.steps),
            rel_noise=check_nonnegative_float("rel_noise", self.rel_noise),
            abs_noise=check_nonnegative_float("abs_noise", self.abs_noise),
            dead_zone=(float(self.dead_zone[0]), float(self.dead_zone[1])),
        )

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0
        for _ in range(self.steps):
            with torch.no_grad():
                residual = y_target - run_physics(x, y_target, physics)
                dx = inv_diffuse(
                    residual,
                    self.amount,
                    rel_noise=self.rel_noise,
                    abs_noise=self.abs_noise,
                    dead_zone=self.dead_zone,
                )
                x = x + dx.to(x.dtype)  # type: ignore[union-attr]
            yield x


class HeatProblem(Problem):
    """Invert periodic heat diffusion ``y = diffuse(x, ν·t)`` on a grid of unit cells.

    ``x``, ``y``: ``(B, X, Y)``; physics and observations in ``dtype`` (float64 as the
    authors). ``x*`` is :func:`soft_rectangles`.

    Args:
        shape: grid ``(X, Y)``, default ``(64, 64)``.
        amount: ``ν·t`` (8).
        dtype: physics dtype (float64).
        min_count: fewest rectangles per sample (4).
        max_count: most rectangles per sample (10).
        max_half_size: largest rectangle half size in cells (10).
    """

    name = "heat"

    def __init__(
        self,
        shape: Sequence[int] = (64, 64),
        amount: float = DEFAULT_AMOUNT,
        dtype: torch.dtype = torch.float64,
        min_count: int = 4,
        max_count: int = 10,
        max_half_size: float = 10.0,
    ):
        self.shape = check_grid_shape("shape", shape, ndim=2)
        # t·ν = 0 would make the inverse problem the identity (and the noise-aware inverse's
        # signal model degenerate): the problem needs some diffusion.
        self.amount = check_nonnegative_float("amount", amount, positive=True)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.dtype = dtype
        check_positive_int("min_count", min_count)
        check_positive_int("max_count", max_count)
        if min_count > max_count:
            raise ValueError(f"min_count ({min_count}) must be <= max_count ({max_count})")
        self.min_count, self.max_count = min_count, max_count
        self.max_half_size = check_nonnegative_float("max_half_size", max_half_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = diffuse(x, amount)``: ``(B, X, Y) -> (B, X, Y)``, differentiable."""
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"x must end with the grid shape {self.shape}, got shape {tuple(x.shape)}"
            )
        return diffuse(x, self.amount)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``x* = soft_rectangles(...)``, ``y* = P(x*)``, both ``(B, X, Y)`` in ``dtype``."""
        x_true = soft_rectangles(
            batch_size,
            self.shape,
            generator,
            min_count=self.min_count,
            max_count=self.max_count,
            max_half_size=self.max_half_size,
            dtype=self.dtype,
        )
        with torch.no_grad():
            y_target = self.forward(x_true)
        return Batch(y_target=y_target, x_true=x_true)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """``{"inverse": HeatInverse(amount)}``: one noise-aware inverse step."""
        return {"inverse": HeatInverse(self.amount)}

    def __repr__(self) -> str:
        return f"HeatProblem(shape={self.shape}, amount={self.amount}, dtype={self.dtype})"
