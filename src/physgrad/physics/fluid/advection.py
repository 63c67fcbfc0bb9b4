"""Semi-Lagrangian and MacCormack advection on the periodic grid, vectorised and differentiable.

Each sample point ``x`` of a field (cell centres for a marker, face centres for a staggered
velocity component) is traced along the velocity ``w`` sampled *at that point*:

* semi-Lagrangian: ``sl(x) = f(x - dt w)`` (bilinear, periodic);
* MacCormack (Selle et al. 2008, as PhiFlow's ``advect.mac_cormack`` with
  ``correction_strength=1`` and the Euler integrator): ``inv(x) = sl(x + dt w)`` with the *same*
  ``w``, ``new = sl + (f - inv) / 2``, clamped to ``[min, max]`` of the four source values
  around the back-traced point ``x - dt w``.

Because every field is sampled on its own grid, the back-trace in index units is simply
``(i - dt w_x / dx, j - dt w_y / dy)``. Positions are wrapped into the periodic domain and
sampled bilinearly from the field padded by one periodic row and column, so any displacement
(many cells) is handled and gradients reach both the field and the velocity (through the
bilinear weights). The hot path uses ``grid_sample`` (fused kernels; the limiter without
``torch.where``); :func:`sample_periodic` and :func:`_advect_own_grid_gather` are the
equivalent gather-based versions (forward-mode AD, which ``grid_sample`` lacks, uses them).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.autograd.forward_ad as forward_ad

from physgrad._validation import check_choice
from physgrad.physics.fluid.grid import (
    Domain,
    _face_components,
    check_dt,
    check_scalar_field,
    check_vector_field,
    staggered_to_centered,
)

AdvectionScheme = Literal["mac_cormack", "semi_lagrangian"]
SCHEMES = ("mac_cormack", "semi_lagrangian")


def sample_periodic(
    values: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor, *, limits: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Bilinearly interpolate periodic grids at fractional index positions.

    Args:
        values: ``(N, ny, nx)`` samples on a regular periodic grid; index ``(j, i)`` is
            position ``(i, j)`` in index units.
        fx: ``(N, ny, nx)`` fractional column positions (any real value, wrapped).
        fy: ``(N, ny, nx)`` fractional row positions.
        limits: also return the min and max of the four samples surrounding each position.

    Returns:
        ``(interpolated, lo, hi)``, each ``(N, ny, nx)``; ``lo``/``hi`` are ``None`` unless
        ``limits``.
    """
    out, corners, _, _ = _bilinear(values, fx, fy)
    if not limits:
        return out, None, None
    v00, v01, v10, v11 = corners
    lo = torch.minimum(torch.minimum(v00, v01), torch.minimum(v10, v11))
    hi = torch.maximum(torch.maximum(v00, v01), torch.maximum(v10, v11))
    return out, lo, hi


def _bilinear(
    values: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """Bilinear periodic interpolation; also returns the corners and the gather layout.

    Returns ``(out, (v00, v01, v10, v11), flat, base)``: ``flat (N, (ny+1)(nx+1))`` is the
    field padded by one periodic row and column, ``base (N, ny*nx)`` the flat index of each
    lower-left corner in it (the others are ``+1``, ``+nx+1``, ``+nx+2``).
    """
    n, ny, nx = values.shape
    # Wrap positions into [0, n) in floating point, then read from a copy padded by one
    # periodic row/column so that the "+1" neighbours need no integer modulo.
    fx = torch.remainder(fx, nx)
    fy = torch.remainder(fy, ny)
    # remainder may round up to exactly n; NaN positions read cell 0 (the NaN still propagates
    # through the weights) instead of producing an invalid index
    x0 = torch.floor(fx).nan_to_num_(0.0).clamp_(0, nx - 1)
    y0 = torch.floor(fy).nan_to_num_(0.0).clamp_(0, ny - 1)
    tx = fx - x0
    ty = fy - y0
    width = nx + 1
    padded = torch.nn.functional.pad(values.unsqueeze(1), (0, 1, 0, 1), mode="circular")
    flat = padded.reshape(n, (ny + 1) * width)
    base = (y0 * width + x0).long().reshape(n, ny * nx)  # exact: small integers
    v00 = flat.gather(1, base).view_as(fx)
    v01 = flat.gather(1, base + 1).view_as(fx)
    v10 = flat.gather(1, base + width).view_as(fx)
    v11 = flat.gather(1, base + (width + 1)).view_as(fx)
    bottom = v00 + tx * (v01 - v00)
    top = v10 + tx * (v11 - v10)
    return bottom + ty * (top - bottom), (v00, v01, v10, v11), flat, base


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


def _advect_own_grid(
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
        return _advect_own_grid_gather(values, wx, wy, dt, domain, scheme)
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


def _advect_own_grid_gather(
    values: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: str,
) -> torch.Tensor:
    """:func:`_advect_own_grid` with four ``gather`` calls per bilinear sample (the previous
    implementation, ~2x slower on CPU; kept for forward-mode AD, which ``grid_sample`` lacks)."""
    n, ny, nx = values.shape
    ii = torch.arange(nx, dtype=values.dtype, device=values.device)
    jj = torch.arange(ny, dtype=values.dtype, device=values.device).unsqueeze(-1)
    sx = (dt / domain.dx) * wx
    sy = (dt / domain.dy) * wy
    sl, corners, flat, base = _bilinear(values, ii - sx, jj - sy)
    if scheme == "semi_lagrangian":
        return sl
    inv = _bilinear(sl, ii + sx, jj + sy)[0]
    new = sl + 0.5 * (values - inv)
    # Clamp to [min, max] of the four source values around the back-traced point. The bound
    # that is hit is re-read with one gather, so its gradient goes to exactly that source
    # sample (cheaper than differentiating min/max chains).
    with torch.no_grad():
        v00, v01, v10, v11 = corners
        lo = torch.minimum(torch.minimum(v00, v01), torch.minimum(v10, v11))
        hi = torch.maximum(torch.maximum(v00, v01), torch.maximum(v10, v11))
        below = new < lo
        clamped = below | (new > hi)
        target = torch.where(below, lo, hi)
        offset = torch.where(v10 == target, nx + 1, nx + 2)
        offset = torch.where(v01 == target, 1, offset)
        offset = torch.where(v00 == target, 0, offset)
        index = base + offset.reshape(n, ny * nx)
    bound = flat.gather(1, index).view_as(new)
    return torch.where(clamped, bound, new)


def advect_centered(
    field: torch.Tensor,
    velocity: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: AdvectionScheme = "mac_cormack",
    *,
    staggered_velocity: bool = True,
) -> torch.Tensor:
    """Advect cell-centred quantities (e.g. the marker) with a velocity field.

    Args:
        field: ``(B, ny, nx)`` scalar or ``(B, C, ny, nx)`` multi-channel cell-centred field.
        velocity: ``(B, 2, ny, nx)`` (length / time), staggered (default) or centred.
        dt: time step (time units); negative steps trace forward (time reversal).
        domain: the periodic domain.
        scheme: ``"mac_cormack"`` (default, as the authors) or ``"semi_lagrangian"``.
        staggered_velocity: whether ``velocity`` is on the faces (averaged to the centres)
            or already centred.

    Returns:
        Advected field, same shape as ``field``.
    """
    check_choice("scheme", scheme, SCHEMES)
    dt = check_dt(dt)
    check_vector_field("velocity", velocity, domain)
    scalar = field.dim() == 3
    if scalar:
        check_scalar_field("field", field, domain)
        field = field.unsqueeze(1)
    elif field.dim() != 4 or tuple(field.shape[2:]) != domain.shape:
        raise ValueError(
            f"field must have shape (B, ny, nx) or (B, C, ny, nx) with (ny, nx) = "
            f"{domain.shape}, got {tuple(field.shape)}"
        )
    if field.shape[0] != velocity.shape[0]:
        raise ValueError(
            f"batch sizes differ: field has {field.shape[0]} samples, velocity has "
            f"{velocity.shape[0]}"
        )
    out = _advect_centered(field, velocity, dt, domain, scheme, staggered_velocity)
    return out[:, 0] if scalar else out


def advect_staggered(
    velocity: torch.Tensor,
    carrier: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: AdvectionScheme = "mac_cormack",
) -> torch.Tensor:
    """Advect a staggered vector field; each component moves along its own face positions.

    The carrier's full vector is interpolated at the x-faces (for ``u``) and the y-faces (for
    ``v``), as PhiFlow does for a ``StaggeredGrid``. Self-advection is
    ``advect_staggered(v, v, dt, domain)``.

    Args:
        velocity: staggered ``(B, 2, ny, nx)`` field to advect.
        carrier: staggered ``(B, 2, ny, nx)`` velocity that moves it (length / time).
        dt: time step (time units).
        domain: the periodic domain.
        scheme: ``"mac_cormack"`` (default) or ``"semi_lagrangian"``.

    Returns:
        Staggered ``(B, 2, ny, nx)``.
    """
    check_choice("scheme", scheme, SCHEMES)
    dt = check_dt(dt)
    check_vector_field("velocity", velocity, domain)
    check_vector_field("carrier", carrier, domain)
    b = velocity.shape[0]
    if carrier.shape[0] != b:
        raise ValueError(
            f"batch sizes differ: velocity has {b} samples, carrier has {carrier.shape[0]}"
        )
    return _advect_staggered(velocity, carrier, dt, domain, scheme)


def advect_centered_velocity(
    velocity: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: AdvectionScheme = "mac_cormack",
) -> torch.Tensor:
    """Self-advect a *centred* velocity ``(B, 2, ny, nx)`` (both components at the centres).

    Args:
        velocity: centred ``(B, 2, ny, nx)``, channels ``(x, y)`` (length / time).
        dt: time step (time units).
        domain: the periodic domain.
        scheme: ``"mac_cormack"`` (default) or ``"semi_lagrangian"``.

    Returns:
        Centred ``(B, 2, ny, nx)``.
    """
    return advect_centered(velocity, velocity, dt, domain, scheme, staggered_velocity=False)


# Unchecked implementations (used inside the simulator's hot loop; safe under torch.func).


def _advect_centered(
    field: torch.Tensor,
    velocity: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: str,
    staggered_velocity: bool,
) -> torch.Tensor:
    """``field (B, C, ny, nx)`` cell-centred; ``velocity (B, 2, ny, nx)``."""
    w = staggered_to_centered(velocity) if staggered_velocity else velocity
    b, c = field.shape[:2]
    shape = domain.shape
    wx, wy = (comp.unsqueeze(1).expand(b, c, *shape).reshape(b * c, *shape) for comp in w.unbind(1))
    out = _advect_own_grid(field.reshape(b * c, *shape), wx, wy, dt, domain, scheme)
    return out.reshape(b, c, *shape)


def _advect_staggered(
    velocity: torch.Tensor, carrier: torch.Tensor, dt: float, domain: Domain, scheme: str
) -> torch.Tensor:
    """Staggered ``velocity`` moved by staggered ``carrier``, both ``(B, 2, ny, nx)``."""
    b = velocity.shape[0]
    shape = domain.shape
    wx, wy = _face_components(carrier)  # each (B, face family, ny, nx)
    out = _advect_own_grid(
        velocity.reshape(b * 2, *shape),
        wx.reshape(b * 2, *shape),
        wy.reshape(b * 2, *shape),
        dt,
        domain,
        scheme,
    )
    return out.reshape(b, 2, *shape)
