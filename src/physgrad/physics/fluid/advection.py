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
bilinear weights). The hot path (:func:`_advect_fast`) uses ``grid_sample`` (fused kernels),
in-place passes into preallocated buffers and, for gradients, a hand-written backward
(:class:`_FastAdvection`); :func:`sample_periodic` and :func:`_advect_own_grid_gather` are the
equivalent gather-based versions (forward-mode AD, which ``grid_sample`` lacks, other
``torch.func`` transforms and second derivatives use them).

On the CPU (float32/float64) plain evaluation and first derivatives run the fused C kernel of
:mod:`physgrad.physics.fluid.kernel` instead of :func:`_advect_fast` and its backward: the
same operations in the same order in a few passes per sample, bitwise the same results.
Where autograd records a simulator step there, the self-advection and its face means, and the
marker's advection and its centring, are one node each (:class:`_CarriedAdvection`).
Other devices and dtypes, ``PHYSGRAD_NO_KERNEL=1`` or a missing compiler use the torch path.
"""

from __future__ import annotations

from typing import Literal

import torch

from physgrad._validation import check_choice
from physgrad.physics.fluid import adjoints, kernel
from physgrad.physics.fluid.grid import (
    Domain,
    _centred_components,
    _face_components,
    _recorded,
    _transformed,
    check_dt,
    check_scalar_field,
    check_vector_field,
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


def _pad_periodic(values: torch.Tensor) -> torch.Tensor:
    """``(N, ny, nx) -> (N, 1, ny + 1, nx + 1)``: one periodic row and column appended.

    Written into one preallocated buffer (one pass over ``values``, no concatenations).
    """
    n, ny, nx = values.shape
    padded = values.new_empty(n, 1, ny + 1, nx + 1)
    inner = padded[:, 0]
    inner[:, :ny, :nx] = values
    inner[:, :ny, nx] = values[:, :, 0]
    inner[:, ny] = inner[:, 0]
    return padded


def _fold_periodic(padded: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_pad_periodic`: ``(N, 1, ny + 1, nx + 1) -> (N, ny, nx)``, the
    appended row and column added back onto row and column 0."""
    ny, nx = padded.shape[-2] - 1, padded.shape[-1] - 1
    p = padded[:, 0]
    out = p[:, :ny, :nx].contiguous()
    out[:, :, 0] += p[:, :ny, nx]
    out[:, 0, :] += p[:, ny, :nx]
    out[:, 0, 0] += p[:, ny, nx]
    return out


def _index_grid(
    ny: int, nx: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(coordinates (2, ny, nx), sizes (2, 1, 1))``: every cell's ``(i, j)`` and ``(nx, ny)``.

    Both axes in one tensor, so that a position pass over ``(N, 2, ny, nx)`` handles x and y
    in one op (half the kernel launches of two ``(N, ny, nx)`` passes, same bits).
    """
    ii = torch.arange(nx, dtype=dtype, device=device).expand(ny, nx)
    jj = torch.arange(ny, dtype=dtype, device=device).unsqueeze(-1).expand(ny, nx)
    sizes = torch.tensor([nx, ny], dtype=dtype, device=device).view(2, 1, 1)
    return torch.stack([ii, jj]), sizes


def _wrap_(position: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """In place: ``position mod n`` in ``[0, n]`` per axis (``n`` itself only by rounding).

    ``x - n floor(x / n)``: how ``torch.remainder`` computes it, ~3x faster on CPU.
    """
    turns = torch.div(position, sizes).floor_().mul_(sizes)
    return position.sub_(turns)


def _advect_fast(
    values: torch.Tensor, shift: torch.Tensor, mac_cormack: bool, keep_state: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Advection of ``values (N, ny, nx)`` by ``shift (N, 2, ny, nx)``, the displacement
    ``(sx, sy)`` in index units.

    No autograd: every intermediate is written in place or into a preallocated buffer
    (out-of-place elementwise ops on these sizes cost ~3x an in-place one on CPU), x and y
    positions in the same passes. With ``keep_state`` it also returns what
    :class:`_FastAdvection`'s backward needs.

    Bilinear samples come from ``grid_sample`` on the field padded by one periodic row and
    column (align_corners, so grid coordinate ``-1 + 2 p / n`` is index position ``p``); its
    grid is a ``(N, 2, ny, nx)`` buffer viewed as ``(N, ny, nx, 2)``, which the CPU kernel
    reads as two contiguous vectors (several times faster than an interleaved grid).
    """
    n, ny, nx = values.shape
    coordinates, sizes = _index_grid(ny, nx, values.dtype, values.device)
    state: dict[str, torch.Tensor] = {}
    back = _wrap_(torch.sub(coordinates, shift), sizes)  # back-traced positions
    if mac_cormack:
        # lower-left corner index floor(position) in [0, n - 1] (the wrap may round up to
        # exactly n). NaN stays NaN: the nearest-neighbour samples at the corner use zeros
        # padding, which masks it (the result is NaN anyway).
        corner_index = torch.floor(back).clamp_(min=0)
        torch.minimum(corner_index, sizes - 1, out=corner_index)
    back.mul_(2.0 / sizes).sub_(1.0)  # grid coordinates
    padded = _pad_periodic(values)
    back_grid = back.permute(0, 2, 3, 1)
    sl = torch.nn.functional.grid_sample(
        padded, back_grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )[:, 0]
    if keep_state:
        state.update(padded=padded, back_grid=back_grid)
    if not mac_cormack:
        return sl, state
    # MacCormack: trace the semi-Lagrangian result forward with the same velocity
    fwd = torch.add(coordinates, shift, out=None if keep_state else back)
    _wrap_(fwd, sizes).mul_(2.0 / sizes).sub_(1.0)
    padded_sl = _pad_periodic(sl)
    fwd_grid = fwd.permute(0, 2, 3, 1)
    new = torch.nn.functional.grid_sample(
        padded_sl, fwd_grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )[:, 0]
    # new = sl + (values - inv) / 2, written over inv
    torch.sub(values, new, out=new)
    new.mul_(0.5).add_(sl)
    # Limit to [min, max] of the four source values around the back-traced point: the 2 x 2
    # min/max of every cell formed once and read with one nearest-neighbour grid_sample at
    # the (exact, integer) corner.
    source = padded[:, 0]
    a, b = source[:, :-1, :-1], source[:, :-1, 1:]
    c, d = source[:, 1:, :-1], source[:, 1:, 1:]
    pooled = values.new_empty(n, 2, ny, nx)
    lo, hi = pooled[:, 0], pooled[:, 1]
    pair = torch.minimum(c, d)
    torch.minimum(torch.minimum(a, b, out=lo), pair, out=lo)
    torch.maximum(c, d, out=pair)
    torch.maximum(torch.maximum(a, b, out=hi), pair, out=hi)
    corner = torch.mul(corner_index, 2.0 / (sizes - 1), out=None if keep_state else back)
    corner_grid = corner.sub_(1.0).permute(0, 2, 3, 1)
    limits = torch.nn.functional.grid_sample(
        pooled, corner_grid, mode="nearest", padding_mode="zeros", align_corners=True
    )
    lo, hi = limits[:, 0], limits[:, 1]
    if keep_state:
        state.update(
            padded_sl=padded_sl, fwd_grid=fwd_grid, keep=(new >= lo) & (new <= hi),
            corner_grid=corner_grid, corner_index=corner_index, sizes=sizes,
        )
    return torch.clamp(new, lo, hi), state


def _displacement(
    wx: torch.Tensor, wy: torch.Tensor, dt: float, domain: Domain
) -> torch.Tensor:
    """``(N, 2, ny, nx)``: ``(dt / dx) wx`` and ``(dt / dy) wy``, the displacement in index
    units (the same products as two scalar multiplications)."""
    scale = torch.tensor([dt / domain.dx, dt / domain.dy], dtype=wx.dtype, device=wx.device)
    return torch.stack([wx, wy], dim=1).mul_(scale.view(2, 1, 1))


class _FastAdvection(torch.autograd.Function):
    """:func:`_advect_fast` with a hand-written backward (two ``grid_sampler_2d_backward``
    calls, the limiter's bound routed to its source sample with one scatter) instead of
    autograd through ~40 small ops.

    The limiter's derivative is the one of the gather implementation: where the result is
    clamped it *is* one of the four source samples (the bound), so its derivative goes to that
    sample, the first corner (order 00, 01, 10, 11) equal to it. Higher derivatives
    (``create_graph=True``) recompute the step with :func:`_advect_own_grid_gather` and
    differentiate that (same values to rounding, twice differentiable). On the CPU the fused
    kernel (:mod:`physgrad.physics.fluid.kernel`) computes the forward and the first-order
    backward (bitwise the same); its forward keeps the limiter's decisions (a byte per
    point), the backward recomputes the traces.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        values: torch.Tensor,
        wx: torch.Tensor,
        wy: torch.Tensor,
        dt: float,
        domain: Domain,
        mac_cormack: bool,
    ) -> torch.Tensor:
        ctx.dt, ctx.domain, ctx.mac_cormack = dt, domain, mac_cormack
        ctx.shapes = values.shape, wx.shape, wy.shape
        flat = _flat(values, wx, wy)
        ctx.fused = kernel.usable(*flat)
        if ctx.fused:  # the compiled kernel keeps its limiter's decisions for its backward
            out, decisions = kernel.advect(
                *(t.contiguous() for t in flat),
                dt / domain.dx, dt / domain.dy, mac_cormack, keep_decisions=True,
            )
            out = out.view(values.shape)
            ctx.save_for_backward(values, wx, wy, out, decisions)
        else:
            shift = _displacement(flat[1], flat[2], dt, domain)
            out, ctx.state = _advect_fast(flat[0], shift, mac_cormack, keep_state=True)
            out = out.view(values.shape)
            ctx.save_for_backward(values, wx, wy, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grads = _FastAdvection._flat_backward(ctx, *_flat(grad))
        return *(None if g is None else g.reshape(shape)
                 for g, shape in zip(grads, ctx.shapes, strict=True)), None, None, None

    @staticmethod
    def _flat_backward(
        ctx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Gradients ``(values, wx, wy)``, each ``(N, ny, nx)``, for ``grad (N, ny, nx)``."""
        values, wx, wy, out, *kept = ctx.saved_tensors
        values, wx, wy, out = _flat(values, wx, wy, out)
        if torch.is_grad_enabled():  # create_graph: differentiate a twice-differentiable copy
            scheme = "mac_cormack" if ctx.mac_cormack else "semi_lagrangian"
            needs = ctx.needs_input_grad[:3]
            inputs = [t for t, need in zip((values, wx, wy), needs, strict=True) if need]
            recomputed = _advect_own_grid_gather(values, wx, wy, ctx.dt, ctx.domain, scheme)
            grads = iter(torch.autograd.grad(recomputed, inputs, grad, create_graph=True))
            return next(grads) if needs[0] else None, *(
                next(grads) if need else None for need in needs[1:]
            )
        if ctx.fused:
            ny, nx = values.shape[1:]
            dt, domain = ctx.dt, ctx.domain
            grads = kernel.advect_backward(
                *(t.contiguous() for t in (values, wx, wy)),
                dt / domain.dx, dt / domain.dy, ctx.mac_cormack, kept[0],
                grad.contiguous(), (2.0 * dt / (nx * domain.dx), 2.0 * dt / (ny * domain.dy)),
                ctx.needs_input_grad[:3],
            )
            return grads
        return _fast_advection_backward(ctx, grad, values, out)


class _CarriedAdvection(torch.autograd.Function):
    """An advection together with the stencil that makes its velocity from a staggered
    ``carrier (B, 2, ny, nx)``, as one node on the fused kernel: the carrier's face means
    (``faces=True``: the staggered self-advection, ``values`` is the carrier) or its centring
    (a single-channel cell-centred ``values (B, 1, ny, nx)``, the marker).

    The kernel makes the stencil's output a sample at a time, in the forward and again in the
    backward (:func:`kernel.carried_advect`): no batch-sized velocity arrays or their
    gradients are kept or passed around (~0.75 MB per step at batch 8). The carrier's gradient
    is the advection's ``values`` term plus the stencil's, the one sum autograd forms first
    for the two nodes this replaces (they run one after the other, before any other user of
    the carrier), so the bits are those of ``FaceComponents`` / ``CentredComponents``
    followed by :class:`_FastAdvection`. Only for a recorded graph on the kernel's tensors
    (``grid._recorded``); ``create_graph=True`` differentiates those two nodes.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, values: torch.Tensor, carrier: torch.Tensor, dt: float, domain: Domain,
        mac_cormack: bool, faces: bool,
    ) -> torch.Tensor:
        ctx.dt, ctx.domain, ctx.mac_cormack, ctx.faces = dt, domain, mac_cormack, faces
        out, decisions = kernel.carried_advect(
            values.detach().contiguous(), carrier.detach().contiguous(), faces,
            dt / domain.dx, dt / domain.dy, mac_cormack,
        )
        ctx.save_for_backward(values, carrier, decisions)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        values, carrier, decisions = ctx.saved_tensors
        dt, domain, faces = ctx.dt, ctx.domain, ctx.faces
        if torch.is_grad_enabled():  # create_graph: the two nodes this one replaces
            stencil = adjoints.FaceComponents if faces else adjoints.CentredComponents
            wx, wy = stencil.apply(carrier)
            out = _FastAdvection.apply(values, wx, wy, dt, domain, ctx.mac_cormack)
            if faces:  # values is the carrier: one input
                return None, *torch.autograd.grad(out, carrier, grad, create_graph=True), \
                    None, None, None, None
            needs = ctx.needs_input_grad[:2]
            inputs = [t for t, need in zip((values, carrier), needs, strict=True) if need]
            grads = iter(torch.autograd.grad(out, inputs, grad, create_graph=True))
            return (next(grads) if needs[0] else None), (next(grads) if needs[1] else None), \
                None, None, None, None
        ny, nx = values.shape[-2:]
        g_values, g_carrier = kernel.carried_advect_backward(
            values.detach().contiguous(), carrier.detach().contiguous(), faces,
            dt / domain.dx, dt / domain.dy, ctx.mac_cormack, decisions, grad.contiguous(),
            (2.0 * dt / (nx * domain.dx), 2.0 * dt / (ny * domain.dy)),
            ctx.needs_input_grad[0],
        )
        return g_values, g_carrier, None, None, None, None


def _flat(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each ``(..., ny, nx)`` tensor as ``(N, ny, nx)`` (a view where the layout allows)."""
    return tuple(t.reshape(-1, *t.shape[-2:]) for t in tensors)


def _fast_advection_backward(
    ctx, grad: torch.Tensor, values: torch.Tensor, out: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients ``(values, wx, wy)`` of :class:`_FastAdvection` (first order, no graph)."""
    s, domain = ctx.state, ctx.domain
    need_values, need_wx, need_wy = ctx.needs_input_grad[:3]
    need_w = need_wx or need_wy
    n, ny, nx = values.shape
    grad = grad.contiguous()
    g_values: torch.Tensor | None = None
    if ctx.mac_cormack:
        keep = s["keep"]
        g_new = grad * keep
        g_bound = grad - g_new  # grad where the limiter is active, else 0
        g_inv = g_new * -0.5
        g_padded_sl, g_fwd = torch.ops.aten.grid_sampler_2d_backward(
            g_inv.unsqueeze(1), s["padded_sl"], s["fwd_grid"], 0, 0, True, [True, need_w]
        )
        g_sl = _fold_periodic(g_padded_sl).add_(g_new)
    else:
        g_sl, g_fwd = grad, None
    g_padded, g_back = torch.ops.aten.grid_sampler_2d_backward(
        g_sl.unsqueeze(1), s["padded"], s["back_grid"], 0, 0, True, [need_values, need_w]
    )
    if need_values:
        if ctx.mac_cormack:
            g_padded = g_padded + _route_to_bound(s, out, g_bound)
        g_values = _fold_periodic(g_padded)
        if ctx.mac_cormack:
            g_values.add_(g_new, alpha=0.5)
    g_wx = g_wy = None
    if need_w:
        # grid = -1 + (2 / n) wrap(i -+ (dt / dx) w): d grid / d w = -+ 2 dt / (n dx)
        diff = g_back.neg() if g_fwd is None else g_fwd.sub_(g_back)
        if need_wx:
            g_wx = diff[..., 0] * (2.0 * ctx.dt / (nx * domain.dx))
        if need_wy:
            g_wy = diff[..., 1] * (2.0 * ctx.dt / (ny * domain.dy))
    return g_values, g_wx, g_wy


def _route_to_bound(
    state: dict[str, torch.Tensor], out: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """``grad (N, ny, nx)`` added onto the limiter's source samples, ``(N, 1, ny+1, nx+1)``.

    Where the limiter is active ``out`` *is* one of the four samples around the back-traced
    point (the bound); its gradient goes to the first corner (order 00, 01, 10, 11) equal to
    it, as in :func:`_advect_own_grid_gather`. The corners are read, and the gradient
    scattered, with nearest-neighbour ``grid_sample`` and its backward at exact integer
    positions (no int64 index arithmetic, which is slow on CPU). ``grad`` must be 0 where the
    limiter is inactive.
    """
    padded = state["padded"]
    source = padded[:, 0]
    corners = torch.stack(
        [source[:, :-1, :-1], source[:, :-1, 1:], source[:, 1:, :-1]], dim=1
    )  # v00, v01, v10 of every cell's 2 x 2 block
    v00, v01, v10 = torch.nn.functional.grid_sample(
        corners, state["corner_grid"], mode="nearest", padding_mode="zeros", align_corners=True
    ).unbind(1)
    e00, e01 = v00 == out, v01 == out
    not00 = ~e00
    position = state["corner_index"].clone()
    position[:, 0] += not00 & (e01 | (v10 != out))  # first match 01 or 11
    position[:, 1] += not00 & ~e01  # first match 10 or 11
    position.mul_(2.0 / state["sizes"]).sub_(1.0)  # on the padded field (n + 1 samples)
    return torch.ops.aten.grid_sampler_2d_backward(
        grad.unsqueeze(1), padded, position.permute(0, 2, 3, 1), 1, 0, True, [True, False]
    )[0]


def _advect_own_grid(
    values: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    dt: float,
    domain: Domain,
    scheme: str,
) -> torch.Tensor:
    """Advect ``values (..., ny, nx)`` with the velocity ``(wx, wy)`` sampled at its own
    points: each as many ``(ny, nx)`` fields as ``values`` (in the same order once flattened to
    ``(N, ny, nx)``), or, for ``values (B, C, ny, nx)``, ``(B, ny, nx)``: one plane per sample
    for all its channels. The result has ``values``' shape.

    Plain evaluation and first derivatives run the fused CPU kernel where it applies, else
    :func:`_advect_fast` (fused ``grid_sample`` kernels, in-place passes;
    :class:`_FastAdvection` for gradients). Forward-mode AD
    (``torch.func.jvp``, which ``grid_sample`` lacks) and other ``torch.func`` transforms use
    the gather-based :func:`_advect_own_grid_gather` (same values to rounding).
    """
    tensors = (values, wx, wy)
    transformed = _transformed(tensors)
    recorded = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    mac_cormack = scheme == "mac_cormack"
    if not (transformed or recorded) and kernel.usable(*tensors):
        # the kernel reads strided velocity planes, a sample's once for all its channels
        planes = _velocity_planes(wx, wy)
        out = kernel.advect(values.detach().reshape(-1, *values.shape[-2:]).contiguous(),
                            *planes, dt / domain.dx, dt / domain.dy, mac_cormack)[0]
        return out.view(values.shape)
    if wx.dim() < values.dim() and values.shape[1] > 1:  # the other paths: a plane per field
        wx, wy = (t.unsqueeze(1).expand(values.shape) for t in (wx, wy))
        tensors = (values, wx, wy)
    if transformed:
        return _advect_own_grid_gather(*_flat(*tensors), dt, domain, scheme).view(values.shape)
    if recorded:  # one node, whatever the layout (no reshape nodes for autograd to run)
        return _FastAdvection.apply(values, wx, wy, dt, domain, mac_cormack)
    flat, wx, wy = _flat(*tensors)
    with torch.no_grad():
        shift = _displacement(wx, wy, dt, domain)
        return _advect_fast(flat, shift, mac_cormack, keep_state=False)[0].view(values.shape)


def _velocity_planes(wx: torch.Tensor, wy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The velocity components as ``(M, ny, nx)`` planes for :func:`kernel.advect`: views where
    both have contiguous rows and one layout (e.g. ``v.unbind(1)``), else contiguous copies."""
    wx, wy = (t.detach().reshape(-1, *t.shape[-2:]) for t in (wx, wy))
    if wx.stride() != wy.stride() or wx.stride()[1:] != (wx.shape[-1], 1):
        wx, wy = wx.contiguous(), wy.contiguous()
    return wx, wy


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
    if staggered_velocity and field.shape[1] == 1 and _recorded(velocity, field):
        return _CarriedAdvection.apply(field, velocity, dt, domain, scheme == "mac_cormack",
                                       False)
    wx, wy = _centred_components(velocity) if staggered_velocity else velocity.unbind(1)
    return _advect_own_grid(field, wx, wy, dt, domain, scheme)  # each plane for C channels


def _advect_staggered(
    velocity: torch.Tensor, carrier: torch.Tensor, dt: float, domain: Domain, scheme: str
) -> torch.Tensor:
    """Staggered ``velocity`` moved by staggered ``carrier``, both ``(B, 2, ny, nx)``."""
    if velocity is carrier and _recorded(carrier):
        return _CarriedAdvection.apply(carrier, carrier, dt, domain, scheme == "mac_cormack",
                                       True)
    wx, wy = _face_components(carrier)  # each (B, face family, ny, nx)
    return _advect_own_grid(velocity, wx, wy, dt, domain, scheme)
