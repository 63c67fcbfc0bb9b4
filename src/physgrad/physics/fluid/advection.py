"""Semi-Lagrangian and MacCormack advection on the periodic grid, vectorised and differentiable.

Each sample point ``x`` of a field (cell centres for a marker, face centres for a staggered
velocity component) is traced along the velocity ``w`` sampled *at that point*:

* semi-Lagrangian: ``sl(x) = f(x - dt w)`` (bilinear, periodic);
* MacCormack (Selle et al. 2008, as PhiFlow's ``advect.mac_cormack`` with
  ``correction_strength=1`` and the Euler integrator): ``inv(x) = sl(x + dt w)`` with the *same*
  ``w``, ``new = sl + (f - inv) / 2``, clamped to ``[min, max]`` of the four source values
  around the back-traced point ``x - dt w``.

Because every field is sampled on its own grid, the back-trace in index units is simply
``(i - dt w_x / dx, j - dt w_y / dy)``. Interpolation gathers the four surrounding samples
with wrapped integer indices, so any displacement (many cells) is handled and gradients reach
both the field (through the gather) and the velocity (through the bilinear weights).
"""

from __future__ import annotations

from typing import Literal

import torch

from physgrad._validation import check_choice
from physgrad.physics.fluid.grid import (
    Domain,
    check_dt,
    check_scalar_field,
    check_vector_field,
    staggered_at_faces,
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


def _advect_own_grid(
    values: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: str,
) -> torch.Tensor:
    """Advect ``values (N, ny, nx)`` with the velocity ``(wx, wy)`` sampled at its own points."""
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
    wx = w[:, 0:1].expand(b, c, *shape).reshape(b * c, *shape)
    wy = w[:, 1:2].expand(b, c, *shape).reshape(b * c, *shape)
    out = _advect_own_grid(field.reshape(b * c, *shape), wx, wy, dt, domain, scheme)
    return out.reshape(b, c, *shape)


def _advect_staggered(
    velocity: torch.Tensor, carrier: torch.Tensor, dt: float, domain: Domain, scheme: str
) -> torch.Tensor:
    """Staggered ``velocity`` moved by staggered ``carrier``, both ``(B, 2, ny, nx)``."""
    b = velocity.shape[0]
    shape = domain.shape
    w = staggered_at_faces(carrier)  # (B, component, vector, ny, nx)
    out = _advect_own_grid(
        velocity.reshape(b * 2, *shape),
        w[:, :, 0].reshape(b * 2, *shape),
        w[:, :, 1].reshape(b * 2, *shape),
        dt,
        domain,
        scheme,
    )
    return out.reshape(b, 2, *shape)
