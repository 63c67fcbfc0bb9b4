"""The fluid simulation's hot path as it was before the issue-12 speed-ups (frozen copy).

Used only by ``bench_fluid_iteration.py`` to time the previous code against the current one
in the same process. ``advect_own_grid`` is ``physgrad.physics.fluid.advection.
_advect_own_grid`` at commit 256c3ed (``grid_sample`` interpolation composed of autograd
ops, concatenation padding, a gather-based limiter when gradients are needed);
``face_components`` is ``grid._face_components`` of that commit (four rolls per mean).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as forward_ad

import physgrad.physics.fluid  # noqa: F401  (loads the submodules)
from physgrad.physics.fluid.adjoints import _xm, _xp, _ym, _yp
from physgrad.physics.fluid.grid import Domain

advection = __import__("sys").modules["physgrad.physics.fluid.advection"]


def face_components(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Previous ``grid._face_components``: ``(wx, wy)``, each ``(B, 2, ny, nx)``."""
    u, v = velocity.unbind(1)
    v_at_x = 0.25 * (v + _xm(v) + _yp(v) + _yp(_xm(v)))
    u_at_y = 0.25 * (u + _xp(u) + _ym(u) + _ym(_xp(u)))
    return torch.stack([u, u_at_y], dim=1), torch.stack([v_at_x, v], dim=1)


def _wrap(position: torch.Tensor, n: int) -> torch.Tensor:
    """``position mod n`` in ``[0, n]`` (``n`` itself only by rounding), gradient 1.

    ``x - n floor(x / n)``, which is how torch's ``remainder`` computes it, but ~3x faster
    on CPU than ``torch.remainder``.
    """
    with torch.no_grad():
        shift = torch.floor(position / n).mul_(n)
    return position - shift


def _pad_periodic(values: torch.Tensor) -> torch.Tensor:
    """``(N, ny, nx) -> (N, 1, ny + 1, nx + 1)``: one periodic row and column appended."""
    rows = torch.cat([values, values[:, :1]], dim=1)
    return torch.cat([rows, rows[:, :, :1]], dim=2).unsqueeze(1)


def _interpolate(padded: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``padded (N, 1, ny+1, nx+1)`` at wrapped index positions.

    ``px``, ``py`` ``(N, ny, nx)`` are column and row positions in ``[0, nx]`` and ``[0, ny]``.
    One fused ``grid_sample`` call (forward and backward) instead of four gathers and a dozen
    elementwise ops; it agrees with :func:`_bilinear` to float rounding of the weights.
    ``zeros`` padding is never reached for finite positions and keeps NaN positions NaN.
    """
    ny, nx = padded.shape[-2] - 1, padded.shape[-1] - 1
    # (x, y) stacked in front and moved last as a view: grid_sample's CPU kernel reads x and
    # y as separate contiguous vectors then (~5x faster than an interleaved, contiguous grid)
    grid = torch.stack([px * (2.0 / nx) - 1.0, py * (2.0 / ny) - 1.0], dim=1).permute(0, 2, 3, 1)
    return torch.nn.functional.grid_sample(
        padded, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )[:, 0]


def _corner_limits(
    padded: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max of the four samples ``padded[y0 : y0 + 2, x0 : x0 + 2]``, ``(N, ny, nx)``.

    ``padded (N, ny+1, nx+1)``; ``x0``, ``y0`` ``(N, ny, nx)`` integer-valued corner indices.
    The 2 x 2 min/max of every cell is formed once and read with one nearest-neighbour
    ``grid_sample`` at the (exact, integer) corner: fewer passes than four gathers (no
    gradient: values only).
    """
    ny, nx = padded.shape[-2] - 1, padded.shape[-1] - 1
    a, b = padded[:, :-1, :-1], padded[:, :-1, 1:]
    c, d = padded[:, 1:, :-1], padded[:, 1:, 1:]
    pooled = torch.stack(
        [torch.minimum(torch.minimum(a, b), torch.minimum(c, d)),
         torch.maximum(torch.maximum(a, b), torch.maximum(c, d))],
        dim=1,
    )
    grid = torch.stack([x0 * (2.0 / (nx - 1)) - 1.0, y0 * (2.0 / (ny - 1)) - 1.0], dim=1)
    limits = torch.nn.functional.grid_sample(
        pooled, grid.permute(0, 2, 3, 1), mode="nearest", padding_mode="border",
        align_corners=True,
    )
    return limits[:, 0], limits[:, 1]


def advect_own_grid(
    values: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: str,
) -> torch.Tensor:
    """Advect ``values (N, ny, nx)`` with the velocity ``(wx, wy)`` sampled at its own points.

    Bilinear samples come from ``grid_sample`` (fused forward and backward kernels), which
    has no forward-mode derivative: with tangents (``torch.func.jvp``) the gather-based
    :func:`_advect_own_grid_gather` runs instead (same values to rounding).
    """
    if any(forward_ad.unpack_dual(t).tangent is not None for t in (values, wx, wy)):
        return advection._advect_own_grid_gather(values, wx, wy, dt, domain, scheme)
    n, ny, nx = values.shape
    ii = torch.arange(nx, dtype=values.dtype, device=values.device)
    jj = torch.arange(ny, dtype=values.dtype, device=values.device).unsqueeze(-1)
    sx = (dt / domain.dx) * wx  # displacement in index units
    sy = (dt / domain.dy) * wy
    bx, by = _wrap(ii - sx, nx), _wrap(jj - sy, ny)  # back-traced positions
    padded = _pad_periodic(values)
    sl = _interpolate(padded, bx, by)
    if scheme == "semi_lagrangian":
        return sl
    inv = _interpolate(_pad_periodic(sl), _wrap(ii + sx, nx), _wrap(jj + sy, ny))
    new = sl + 0.5 * (values - inv)
    # Limit to [min, max] of the four source values around the back-traced point.
    width = nx + 1
    flat = padded.reshape(n, (ny + 1) * width)
    with torch.no_grad():
        # remainder may round up to exactly n; NaN positions read cell 0 (new is NaN anyway)
        x0 = torch.floor(bx).nan_to_num_(0.0).clamp_(0, nx - 1)
        y0 = torch.floor(by).nan_to_num_(0.0).clamp_(0, ny - 1)
    if not values.requires_grad:  # values only: no source sample to route gradients to
        with torch.no_grad():
            lo, hi = _corner_limits(padded.detach()[:, 0], x0, y0)
        return torch.clamp(new, lo, hi)
    with torch.no_grad():
        # Where the limiter is active the result *is* one of the four source samples (the
        # bound), so its derivative goes to that sample, not to ``new`` (a valid subgradient
        # of the min/max): find it, the first corner (order 00, 01, 10, 11) equal to the bound.
        # Written without torch.where, which is slow on CPU.
        base = (y0 * width + x0).long().reshape(n, ny * nx)  # exact: small integers
        source = flat.detach()
        v00, v01, v10, v11 = (
            source.gather(1, base + o).view(n, ny, nx) for o in (0, 1, width, width + 1)
        )
        lo = torch.minimum(torch.minimum(v00, v01), torch.minimum(v10, v11))
        hi = torch.maximum(torch.maximum(v00, v01), torch.maximum(v10, v11))
        target = torch.clamp(new, lo, hi)
        offset = (width + 1) - (v10 == target).to(base.dtype)
        offset = offset - (v01 == target).to(base.dtype) * (offset - 1)
        offset = offset * (v00 != target).to(base.dtype)
        index = base + offset.reshape(n, ny * nx)
        keep = ((new >= lo) & (new <= hi)).to(new.dtype)
    bound = flat.gather(1, index).view_as(new)
    # exactly new where keep == 1 and bound where keep == 0 (x * 1 = x, x * 0 = 0)
    return new * keep + bound * (1.0 - keep)
