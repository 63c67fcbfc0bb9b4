"""The ill-conditioned 2D sine problem of the published paper (SIP, NeurIPS 2022, Sec. 4.1;
authors' sin_characterization/train_sin.py).

``f(x) = (sin v₁, v₂)`` with ``v = diag(s/ξ, s·ξ) R(θ) x``, global scale ``s = 10``, conditioning
``ξ >= 1`` and ``R(θ)`` the counter-clockwise rotation by ``θ`` degrees. Targets
``y* ~ U[-1, 1]²``. The two directions of ``x`` differ in sensitivity by ``ξ²``, and for
``θ ≠ 0`` that ill-conditioning is not aligned with the network's outputs, so no per-output
rescaling (Adam, RMSprop) can undo it. Every ``y*`` has infinitely many exact solutions
(``v₁ = arcsin y₁*`` or ``π - arcsin y₁*``, plus ``2πn``; ``v₂ = y₂*``).

Units: ``x``, ``y`` dimensionless; ``θ`` in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int
from physgrad.core import InverseSolver, Physics
from physgrad.problems.base import Batch, Problem
from physgrad.solvers.base import Solver, block_hessian

GLOBAL_SCALE = 10.0
"""``s`` in ``v = diag(s/ξ, s·ξ) R(θ) x`` (the authors' "best value for Adam training")."""


def _check_params(xi: float, angle: float, global_scale: float) -> tuple[float, float, float]:
    xi = check_nonnegative_float("xi", xi, positive=True)
    if isinstance(angle, bool) or not isinstance(angle, int | float):
        raise TypeError(f"angle must be a number (degrees), got {angle!r}")
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite, got {angle}")
    return xi, float(angle), check_nonnegative_float("global_scale", global_scale, positive=True)


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate 2-vectors counter-clockwise by ``angle`` degrees: ``(..., 2) -> (..., 2)``."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return torch.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], dim=-1)


def scales(xi: float, global_scale: float = GLOBAL_SCALE) -> tuple[float, float]:
    """The diagonal ``(s/ξ, s·ξ)`` applied after the rotation."""
    return global_scale / xi, global_scale * xi


def transform(
    x: torch.Tensor, xi: float, angle: float, global_scale: float = GLOBAL_SCALE
) -> torch.Tensor:
    """``v = diag(s/ξ, s·ξ) R(θ) x``: ``(..., 2) -> (..., 2)``, linear."""
    a, b = scales(xi, global_scale)
    v = rotate(x, angle)
    return torch.stack([a * v[..., 0], b * v[..., 1]], dim=-1)


def untransform(
    v: torch.Tensor, xi: float, angle: float, global_scale: float = GLOBAL_SCALE
) -> torch.Tensor:
    """The inverse of :func:`transform`: ``x = R(-θ) diag(ξ/s, 1/(s·ξ)) v``."""
    a, b = scales(xi, global_scale)
    return rotate(torch.stack([v[..., 0] / a, v[..., 1] / b], dim=-1), -angle)


def sine2d_physics(
    x: torch.Tensor, xi: float = 10.0, angle: float = 45.0, global_scale: float = GLOBAL_SCALE
) -> torch.Tensor:
    """``f(x) = (sin v₁, v₂)``, ``v = diag(s/ξ, s·ξ) R(θ) x``; ``(B, 2) -> (B, 2)``."""
    v = transform(x, xi, angle, global_scale)
    return torch.stack([torch.sin(v[..., 0]), v[..., 1]], dim=-1)


def closest_solution(
    x: torch.Tensor,
    y_target: torch.Tensor,
    xi: float = 10.0,
    angle: float = 45.0,
    global_scale: float = GLOBAL_SCALE,
) -> torch.Tensor:
    """The exact solution of ``f(x) = y*`` closest to ``x`` (the authors' ``closest_solution``).

    In ``v``-space the solutions are ``v₁ ∈ {arcsin y₁*, π - arcsin y₁*} + 2πn``, ``v₂ = y₂*``;
    of the two branches the one whose nearest ``2πn`` shift is closer to the current ``v₁``
    is taken (compared as the rounding residual in periods, as the authors), then mapped back
    to ``x``. Since ``v₂`` is fixed, this is the closest solution in ``v₁``; the transform
    only stretches ``v₁`` and ``v₂`` independently, so it is also the closest in ``x``.

    Args:
        x: ``(B, 2)`` current points.
        y_target: ``(B, 2)`` targets with ``|y₁*| <= 1``.
        xi, angle, global_scale: the process parameters (``angle`` in degrees).

    Returns:
        ``(B, 2)`` exact solutions, dtype of ``x``.
    """
    v = transform(x, xi, angle, global_scale)
    t = y_target.to(x.dtype)
    sol1 = torch.arcsin(t[..., 0].clamp(-1.0, 1.0))
    sol2 = math.pi - sol1
    n1f = (v[..., 0] - sol1) / (2 * math.pi)
    n2f = (v[..., 0] - sol2) / (2 * math.pi)
    n1, n2 = torch.round(n1f), torch.round(n2f)
    first = (n1 - n1f).abs() < (n2 - n2f).abs()
    v1 = torch.where(first, sol1 + 2 * math.pi * n1, sol2 + 2 * math.pi * n2)
    return untransform(torch.stack([v1, t[..., 1]], dim=-1), xi, angle, global_scale)


def newton_minimization(
    grad: torch.Tensor, hessian: torch.Tensor, max_loss_change: float | None = 0.2
) -> torch.Tensor:
    """The authors' eigen-decomposed, always-descending Newton direction (``newton.py``).

    Per sample: ``H = V diag(S) Vᵀ``, ``g_eig = Vᵀ g``, Newton step ``-g_eig / S`` (0 where
    ``S = 0``). With ``max_loss_change`` set, the magnitude in each eigen-direction whose
    eigenvalue is not above the geometric mean ``|∏ S|^(1/d)`` is limited to
    ``|max_loss_change / g_eig|`` (a first-order bound on the loss decrease, guarding
    directions of small or negative curvature); the sign is always that of ``-g_eig``.

    Args:
        grad: ``(B, d)`` gradients.
        hessian: ``(B, d, d)`` symmetric Hessians.
        max_loss_change: the limit, or ``None`` for the unlimited descending Newton step.

    Returns:
        ``(B, d)`` steps ``Δx``.
    """
    eigvals, eigvecs = torch.linalg.eigh(0.5 * (hessian + hessian.transpose(-1, -2)))
    g_eig = (eigvecs.transpose(-1, -2) @ grad.unsqueeze(-1)).squeeze(-1)
    newton = -_divide_no_nan(g_eig, eigvals)
    if max_loss_change is None:
        step_eig = torch.sign(-g_eig) * newton.abs()
    else:
        s_avg = eigvals.prod(dim=-1, keepdim=True).abs() ** (1.0 / eigvals.shape[-1])
        limit = torch.where(
            eigvals > s_avg, newton.abs(), _divide_no_nan(max_loss_change, g_eig).abs()
        )
        step_eig = torch.minimum(newton.abs(), limit) * torch.sign(-g_eig)
    return (eigvecs @ step_eig.unsqueeze(-1)).squeeze(-1)


def _divide_no_nan(a: torch.Tensor | float, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` with 0 where ``b == 0`` (PhiFlow's ``divide_no_nan``)."""
    a = torch.as_tensor(a, dtype=b.dtype, device=b.device)
    safe = torch.where(b == 0, torch.ones_like(b), b)
    return torch.where(b == 0, torch.zeros_like(b), a / safe)


@dataclass(frozen=True, repr=False)
class LimitedNewton(Solver):
    """Newton iterations with the authors' step limiter (:func:`newton_minimization`).

    Exact per-sample Hessians of the objective (``1/2 ||f(x) - y*||²`` by default) via
    :func:`physgrad.solvers.base.block_hessian`. Unlike :class:`physgrad.solvers.Newton`
    (which flips negative curvature but never limits), eigen-directions of low curvature are
    capped at ``|max_loss_change / g_eig|``.

    Args:
        max_loss_change: the limit (``> 0``), or ``None`` for no limit; the authors use 0.2.
        steps: iterations (>= 1); the training method uses 1.
    """

    max_loss_change: float | None = 0.2
    steps: int = 1

    def __post_init__(self) -> None:
        if self.max_loss_change is not None:
            check_nonnegative_float("max_loss_change", self.max_loss_change, positive=True)
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")

    def grad_and_hessian(
        self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample gradient ``(B, d)`` and Hessian ``(B, d, d)`` of the objective at ``x``
        (autodiff; subclasses may use a closed form)."""
        _, grad = self.loss_and_grad(x, y_target, physics)
        hessian = block_hessian(lambda z: self.loss(z, y_target, physics), x)
        return grad.reshape(x.shape[0], -1), hessian

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        x = x0
        for _ in range(self.steps):
            grad, hessian = self.grad_and_hessian(x, y_target, physics)
            step = newton_minimization(grad, hessian, self.max_loss_change)
            x = x + step.reshape(x.shape)
            yield x


@dataclass(frozen=True, repr=False)
class Sine2DNewton(LimitedNewton):
    """:class:`LimitedNewton` on ``1/2 ||f(x) - y*||²`` of the sine2d process, with the gradient
    and Hessian in closed form (about 10x cheaper than autodiff Hessians on a CPU).

    With ``A = diag(s/ξ, s·ξ) R(θ)``, ``v = A x`` and ``r = sin v₁ - y₁*``:
    ``g = Aᵀ (r cos v₁, v₂ - y₂*)`` and ``H = Aᵀ diag(cos² v₁ - r sin v₁, 1) A``.
    The ``physics`` argument is not called (the process is fixed by ``xi``, ``angle``).

    Args:
        xi, angle, global_scale: the process (``angle`` in degrees).
        max_loss_change, steps: as :class:`LimitedNewton` (keyword-only here).
    """

    # LimitedNewton's fields come first in a dataclass; keyword-only, they follow the process
    max_loss_change: float | None = field(default=0.2, kw_only=True)
    steps: int = field(default=1, kw_only=True)
    xi: float
    angle: float
    global_scale: float = GLOBAL_SCALE

    def __post_init__(self) -> None:
        super().__post_init__()
        xi, angle, global_scale = _check_params(self.xi, self.angle, self.global_scale)
        self._store(xi=xi, angle=angle, global_scale=global_scale)

    def grad_and_hessian(
        self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[-1] != 2:
            raise ValueError(f"Sine2DNewton expects x of shape (B, 2), got {tuple(x.shape)}")
        a, b = scales(self.xi, self.global_scale)
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        mat = torch.tensor([[a * c, -a * s], [b * s, b * c]], dtype=x.dtype, device=x.device)
        v = x @ mat.T
        t = y_target.to(x.dtype)
        sin, cos = torch.sin(v[:, 0]), torch.cos(v[:, 0])
        r = sin - t[:, 0]
        grad_v = torch.stack([r * cos, v[:, 1] - t[:, 1]], dim=-1)
        curv = torch.stack([cos * cos - r * sin, torch.ones_like(r)], dim=-1)
        grad = grad_v @ mat
        hessian = mat.T @ (curv.unsqueeze(-1) * mat)
        return grad, hessian


class Sine2DProblem(Problem):
    """Find ``x ∈ R²`` with ``(sin v₁, v₂) = y*``, ``v = diag(s/ξ, s·ξ) R(θ) x``.

    ``x``, ``y``: ``(B, 2)``; physics in float64; no unique ground truth (``x_true = None``).
    Metrics: the base ones (``y_l1``, ``y_l2 = 1/2 ||f(x) - y*||²``) plus, with ``x*`` the
    closest exact solution (:func:`closest_solution`), ``x_dist = ||x - x*||₂`` and
    ``x_l1 = ||x - x*||₁``.

    Args:
        xi: conditioning ``ξ > 0`` (1: well conditioned).
        angle: rotation ``θ`` in degrees.
        global_scale: ``s > 0``.
    """

    name = "sine2d"
    dtype = torch.float64

    def __init__(self, xi: float = 10.0, angle: float = 45.0, global_scale: float = GLOBAL_SCALE):
        self.xi, self.angle, self.global_scale = _check_params(xi, angle, global_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`sine2d_physics` with this problem's parameters: ``(B, 2) -> (B, 2)``."""
        if x.dim() != 2 or x.shape[-1] != 2:
            raise ValueError(f"sine2d expects x of shape (B, 2), got {tuple(x.shape)}")
        return sine2d_physics(x, self.xi, self.angle, self.global_scale)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Targets ``y* ~ U[-1, 1]²`` ``(B, 2)`` in float64; no ground truth."""
        check_positive_int("batch_size", batch_size)
        y = 2 * torch.rand(batch_size, 2, generator=generator, dtype=self.dtype) - 1
        return Batch(y_target=y)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """``"newton"``: the authors' limited Newton step (``max_loss_change = 0.2``, closed-form
        derivatives); ``"newton-autodiff"``: the same with autodiff Hessians."""
        return {
            "newton": Sine2DNewton(self.xi, self.angle, self.global_scale, max_loss_change=0.2),
            "newton-autodiff": LimitedNewton(0.2),
        }

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The base metrics plus ``x_dist`` and ``x_l1`` to the closest solution, each ``(B,)``."""
        out = super().metrics(x, batch)
        with torch.no_grad():
            xd = x.to(self.dtype)
            diff = xd - closest_solution(xd, batch.y_target, self.xi, self.angle,
                                         self.global_scale)
            out["x_dist"] = diff.norm(dim=-1)
            out["x_l1"] = diff.abs().sum(dim=-1)
        return out

    def __repr__(self) -> str:
        return f"Sine2DProblem(xi={self.xi}, angle={self.angle})"
