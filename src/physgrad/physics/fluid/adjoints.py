"""A simulation step's small ops as single autograd nodes, bit for bit autograd's own gradients.

With a graph, :func:`~physgrad.physics.fluid.grid._face_components`,
:func:`~physgrad.physics.fluid.grid.staggered_to_centered`,
:func:`~physgrad.physics.fluid.grid.divergence`, the projection's
``velocity - gradient_to_faces(p)`` and the energy rescale would record 8–13 small torch ops
each (rolls, sums, products, a stack). Here each is one ``torch.autograd.Function``: the
forward is the compiled kernel's (:mod:`physgrad.physics.fluid.kernel`, the torch code's
operations in its order; the energy rescale's forward is its torch ops) and the backward
computes exactly what autograd computes through those ops, *including the order
in which it adds the gradient contributions that meet at one tensor* (floating-point addition
is commutative but not associative, so only sums of three or more terms can differ). Long
training runs resume from checkpoints with the current code, so the gradients must not change
in a single bit (``tests/test_fluid_adjoints.py`` checks them against autograd through the
torch ops; ``tests/test_fluid_bitwise.py`` whole training iterations).

How the order follows from the torch code: autograd runs the nodes that are ready in
decreasing order of creation and adds a node's output gradient to what its input has received
so far. In ``u_pairs = u + roll(u)`` followed by ``stack([u, 0.25 (u_pairs + ...)])``, ``u``
first receives the stack's slice (created last), then the sum's direct term, then the roll's:
``(g_stack + g_pairs) + roll(g_pairs)``. Each adjoint below is that expression.

A velocity reaches each stencil in the torch code through one node (``unbind``), so the
whole stencil adds one term where the velocity's gradients meet, at the same moment as
before: the order there is unchanged. The pressure of ``velocity - gradient_to_faces(p)``
reaches it through four nodes; the single node adds their terms first, so the bits are
autograd's when ``p`` feeds nothing else, as in the projection (elsewhere the same gradient
up to the order of a floating-point sum); the same holds for the energy rescale's velocity.

Each adjoint is written twice: with torch ops (:func:`face_components_adjoint` etc., the
reference, differentiable for ``create_graph=True``) and in the compiled kernel
(``*_backward`` in ``advection_kernel.c``, one pass, the same operations), which a plain
backward runs.
"""

from __future__ import annotations

import torch

from physgrad.physics.fluid import kernel

# Shifts: torch.roll(a, 1, -1)[..., i] == a[..., i - 1], torch.roll(a, -1, -1) the opposite
# (also grid.py's stencils).


def _xm(a: torch.Tensor) -> torch.Tensor:  # a[..., j, i-1]
    return torch.roll(a, 1, -1)


def _xp(a: torch.Tensor) -> torch.Tensor:  # a[..., j, i+1]
    return torch.roll(a, -1, -1)


def _ym(a: torch.Tensor) -> torch.Tensor:  # a[..., j-1, i]
    return torch.roll(a, 1, -2)


def _yp(a: torch.Tensor) -> torch.Tensor:  # a[..., j+1, i]
    return torch.roll(a, -1, -2)


def face_components_adjoint(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Autograd's gradient of ``grid._face_components`` for output gradients ``gx, gy`` (each
    ``(B, 2, ny, nx)``): ``(B, 2, ny, nx)``.

    Forward: ``u_pairs = u + u[i+1]``, ``v_pairs = v + v[i-1]``, ``wx = (u, 0.25 (u_pairs +
    u_pairs[j-1]))``, ``wy = (0.25 (v_pairs + v_pairs[j+1]), v)``.
    """
    hu = gx[:, 1] * 0.25
    pu = hu + _yp(hu)  # u_pairs: its sum's term and its roll's (two terms: any order)
    hv = gy[:, 0] * 0.25
    pv = hv + _ym(hv)
    gu = (gx[:, 0] + pu) + _xm(pu)  # u: the stack's slice, the pair sum's term, its roll's
    gv = (gy[:, 1] + pv) + _xp(pv)
    return torch.stack([gu, gv], dim=1)


def centred_components_adjoint(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Autograd's gradient of ``grid.staggered_to_centered`` (``0.5 (u + u[i+1])``, ``0.5 (v +
    v[j+1])``) for the gradients ``gx, gy (B, ny, nx)`` of its two components: ``(B, 2, ny,
    nx)``."""
    hu = gx * 0.5
    hv = gy * 0.5
    return torch.stack([hu + _xm(hu), hv + _ym(hv)], dim=1)


def divergence_adjoint(grad: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Autograd's gradient of ``grid.divergence`` (``(u[i+1] - u) / dx + (v[j+1] - v) / dy``)
    for ``grad (B, ny, nx)``: ``(B, 2, ny, nx)``."""
    a = grad / dx
    b = grad / dy
    return torch.stack([(-a) + _xm(a), (-b) + _ym(b)], dim=1)


def subtract_gradient_adjoint(grad: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Autograd's gradient with respect to ``p`` of ``velocity - gradient_to_faces(p)``
    (``gradient_to_faces(p) = ((p - p[i-1]) / dx, (p - p[j-1]) / dy)``) for ``grad (B, 2, ny,
    nx)``: ``(B, ny, nx)``. (The gradient with respect to ``velocity`` is ``grad`` itself.)

    ``p`` receives four terms, in the order autograd runs their nodes: the y row's difference
    (created last), its roll, then the x row's difference and its roll.
    """
    gx, gy = (-grad).unbind(1)
    a = gy / dy
    b = gx / dx
    return ((a + _yp(-a)) + b) + _xp(-b)


def _compiled(*grads: torch.Tensor) -> bool:
    """Whether a backward runs the compiled adjoint: no graph of the backward to record
    (``create_graph=False``) and tensors the kernel takes."""
    return not torch.is_grad_enabled() and kernel.usable(*grads)


class FaceComponents(torch.autograd.Function):
    """``grid._face_components`` of a staggered ``velocity (B, 2, ny, nx)`` as one node:
    ``(wx, wy)``, each ``(B, 2, ny, nx)``."""

    @staticmethod
    def forward(ctx, velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return kernel.face_components(velocity.contiguous())

    @staticmethod
    def backward(ctx, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not _compiled(gx, gy):
            return face_components_adjoint(gx, gy)
        gx, gy = gx.contiguous(), gy.contiguous()
        return kernel.stencil_backward("face_components", torch.empty_like(gx), gx, gy)


class CentredComponents(torch.autograd.Function):
    """``grid.staggered_to_centered`` of ``velocity (B, 2, ny, nx)`` as one node with the two
    components as outputs, ``(cx, cy)``, each a contiguous ``(B, ny, nx)`` tensor (what the
    marker's advection reads; the torch code's ``unbind`` of the centred field has no
    arithmetic, so the gradients are the same)."""

    @staticmethod
    def forward(ctx, velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return kernel.centred_components(velocity.contiguous())

    @staticmethod
    def backward(ctx, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not _compiled(gx, gy):
            return centred_components_adjoint(gx, gy)
        gx, gy = gx.contiguous(), gy.contiguous()
        out = gx.new_empty(gx.shape[0], 2, *gx.shape[1:])
        cells = gx.shape[1] * gx.shape[2]  # from one sample's component to the next
        return kernel.stencil_backward("staggered_to_centered", out, gx, gy, cells)


class Divergence(torch.autograd.Function):
    """``grid.divergence`` of a staggered ``velocity (B, 2, ny, nx)`` as one node:
    ``(B, ny, nx)``."""

    @staticmethod
    def forward(ctx, velocity: torch.Tensor, dx: float, dy: float) -> torch.Tensor:  # type: ignore[override]
        ctx.spacing = dx, dy
        return kernel.divergence(velocity.contiguous(), dx, dy, False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if not _compiled(grad):
            return divergence_adjoint(grad, *ctx.spacing), None, None
        grad = grad.contiguous()
        b, ny, nx = grad.shape
        out = grad.new_empty(b, 2, ny, nx)
        return kernel.stencil_backward("divergence", out, grad, *ctx.spacing), None, None


class SubtractGradient(torch.autograd.Function):
    """``velocity - gradient_to_faces(p)`` (staggered ``velocity (B, 2, ny, nx)``, ``p (B, ny,
    nx)``) as one node: ``(B, 2, ny, nx)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, velocity: torch.Tensor, p: torch.Tensor, dx: float, dy: float
    ) -> torch.Tensor:
        ctx.spacing = dx, dy
        return kernel.subtract_gradient(velocity.contiguous(), p.contiguous(), dx, dy, False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if not ctx.needs_input_grad[1]:
            return grad, None, None, None
        if not _compiled(grad):
            return grad, subtract_gradient_adjoint(grad, *ctx.spacing), None, None
        g = grad.contiguous()
        out = g.new_empty(g.shape[0], *g.shape[2:])
        return grad, kernel.stencil_backward("subtract_gradient", out, g, *ctx.spacing), None, None


# --------------------------------------------------------------------- energy rescale


def mean_square(velocity: torch.Tensor, mode: str) -> torch.Tensor:
    """``simulate.energy``: the mean of ``velocity * velocity`` per sample and component
    (``mode="component"``, ``(B, 2, 1, 1)``) or per sample (``"total"``, ``(B, 1, 1, 1)``)."""
    sq = velocity * velocity  # (pow's backward is ~3x slower)
    return sq.mean(dim=(1, 2, 3) if mode == "total" else (2, 3), keepdim=True)


class MeanSquare(torch.autograd.Function):
    """:func:`mean_square` of ``velocity`` as one node, called with the velocity twice (as
    the product ``velocity * velocity`` has it twice): autograd's gradient ``q v`` with ``q
    = g_e / n`` (the mean's gradient per cell), once per operand, added in that order."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, velocity: torch.Tensor, same: torch.Tensor, mode: str
    ) -> torch.Tensor:
        e = mean_square(velocity, mode)
        ctx.save_for_backward(velocity)
        ctx.cells = velocity.numel() // e.numel()
        return e

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (velocity,) = ctx.saved_tensors
        term = (grad / ctx.cells) * velocity
        return term, term, None


def energy_factor(e: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sqrt(target / e)`` where ``e > 0`` and ``target / e > 0``, else 0 (gradient-safe):
    the factor ``simulate.rescale_energy`` multiplies the velocity with, shaped like ``e``."""
    live = e > 0
    ratio = target / torch.where(live, e, 1.0)
    valid = live & (ratio > 0)  # (8 small ops: this runs ~16 times per training step)
    return torch.where(valid, torch.where(valid, ratio, 1.0).sqrt(), 0.0)


def _energy_factor_backward(
    e: torch.Tensor, target: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Autograd's gradients ``(g_e, g_target)`` of :func:`energy_factor` for ``grad`` (all
    shaped like ``e``): its formulas for ``where``, ``sqrt`` and ``/`` in their order, written
    out (a nested ``torch.autograd.grad`` on these few small tensors cost more than the
    stencils' whole backward at batch 8)."""
    live = e > 0
    den = torch.where(live, e, torch.ones_like(e))
    ratio = target / den
    positive = ratio > 0
    root = torch.sqrt(torch.where(positive, ratio, torch.ones_like(ratio)))
    g_root = torch.where(live & positive, grad, 0.0)
    g_ratio = torch.where(positive, g_root / (2 * root), 0.0)
    g_den = -g_ratio * ((target / den) / den)
    return torch.where(live, g_den, 0.0), g_ratio / den


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``t`` summed over the dimensions broadcast to it from ``shape`` (autograd's
    ``at::sum_to`` for a gradient of a broadcast operand, the same reduction call)."""
    dims = [i for i, (n, m) in enumerate(zip(shape, t.shape, strict=True)) if n == 1 and m != 1]
    return t.sum(dims, keepdim=True) if dims else t


class RescaleEnergy(torch.autograd.Function):
    """``simulate.rescale_energy(velocity, target, mode)`` (``velocity (B, 2, ny, nx)``,
    ``target`` shaped like :func:`mean_square`'s result) as one node.

    The velocity's gradient is autograd's through ``velocity * factor`` (created last, so
    first) and through ``velocity * velocity`` (two terms, one per operand), with the
    mean's gradient ``g_e / n`` spread over the cells: ``((g f) + (q v)) + (q v)``, ``q = g_e
    / n``. The factor's gradient is the broadcast product's reduction, ``sum(g v)``, and
    the small chain from ``e`` and ``target`` to the factor is
    :func:`_energy_factor_backward`. As for the pressure of the projection, these are
    autograd's bits when ``velocity`` feeds nothing but the rescale (as in a simulation
    step), elsewhere the same gradient up to the order of a sum.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, velocity: torch.Tensor, target: torch.Tensor, mode: str
    ) -> torch.Tensor:
        e = mean_square(velocity, mode)
        ctx.mode = mode
        factor = energy_factor(e, target)
        ctx.save_for_backward(velocity, target, e, factor)
        return velocity * factor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        velocity, target, e, factor = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiate the torch ops themselves
            needs = ctx.needs_input_grad[:2]
            inputs = [x for x, need in zip((velocity, target), needs, strict=True) if need]
            out = velocity * energy_factor(mean_square(velocity, ctx.mode), target)
            grads = iter(torch.autograd.grad(out, inputs, grad, create_graph=True))
            return *(next(grads) if need else None for need in needs), None
        g_factor = _sum_to(grad * velocity, factor.shape)
        if kernel.usable(grad, velocity, target):
            q, g_t = kernel.energy_factor_backward(
                velocity, e, target.contiguous(), factor, g_factor.contiguous()
            )
            g = grad.contiguous()
            g_v = kernel.stencil_backward(
                "rescale_energy", torch.empty_like(g), g, velocity.contiguous(),
                factor.contiguous(), q.contiguous(), factor.shape[1],
            )
        else:
            g_e, g_t = _energy_factor_backward(e, target, g_factor)
            q = g_e / (velocity.numel() // e.numel())  # the mean's gradient per cell
            g_v = ((grad * factor) + (q * velocity)) + (q * velocity)
        return g_v, g_t, None
