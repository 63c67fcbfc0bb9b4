"""sin(a/x): the single-parameter problem of section 3.1 / B.2 of the paper.

For a known ``a ~ U[0.1, 10.1)`` find ``x`` with ``P_a(x) = sin(a/x) = y* = -1``. Every
``x = a / (3π/2 + 2πn)`` (n integer) is a solution, so the problem is multi-modal, and
``dP/dx = -a cos(a/x) / x²`` is unbounded as ``x -> 0``: the badly scaled, oscillating kind of
gradient for which physical gradients help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int, check_tensor
from physgrad.core import InverseSolver, Physics
from physgrad.problems.base import Batch, Problem
from physgrad.solvers import Analytic, Newton
from physgrad.solvers.base import Solver

A_RANGE = (0.1, 10.1)
"""Range of the known parameter ``a`` (uniform)."""
_TINY = 1e-12  # keeps 1/x finite when a prediction is exactly 0


def nearest_minimum(x0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The solution ``x = a / (3π/2 + 2πn)`` of sin(a/x) = -1 nearest to ``x0`` (in 1/x).

    ``n = round(a / (2π x0) - 3/4)``, restricted to the side of zero that ``x0`` is on: for
    ``x0 > 0`` the outermost minimum is ``n = 0`` (x = 2a/3π), for ``x0 < 0`` it is ``n = -1``
    (x = -2a/π). Shapes broadcast; ``(B, 1)`` in the experiment.
    """
    x0 = torch.where(x0.abs() < _TINY, torch.full_like(x0, _TINY), x0)
    n = torch.round(a / (2 * math.pi * x0) - 0.75)
    n = torch.where(x0 > 0, n.clamp_min(0), n.clamp_max(-1))
    return a / (1.5 * math.pi + 2 * math.pi * n)


@dataclass(frozen=True, repr=False)
class InverseGradient(Solver):
    """The paper's "inverse gradient" update ``Δx = -h / (dP/dx)`` with ``h = sin(a/x) + 1``.

    ``h`` is the height above the known minimum value ``-1`` (domain knowledge), so this is a
    Newton root-finding step on ``h``. Where ``dP/dx`` vanishes the step is infinite; it is set
    to 0 when ``h`` also vanishes (at a minimum) and otherwise left to the method's clip.

    Args:
        a: the batch's ``a`` ``(B, 1)``.
    """

    a: torch.Tensor = field(compare=False)

    def __post_init__(self) -> None:
        check_tensor("a", self.a)

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = torch.where(x0.abs() < _TINY, torch.full_like(x0, _TINY), x0)
        h = torch.sin(self.a / x) - y_target
        slope = -self.a * torch.cos(self.a / x) / x**2
        step = torch.where(slope == 0, torch.zeros_like(h), -h / slope.where(slope != 0, 1.0))
        step = torch.where((slope == 0) & (h != 0), torch.full_like(h, math.inf), step)
        return x0 + step.nan_to_num(posinf=1e30, neginf=-1e30)


@dataclass(frozen=True, repr=False)
class ClippedGradientStep(Solver):
    """One unit gradient-descent step with ``dP/dx`` clipped to ``[-clip, clip]``.

    ``x_n = x - (P(x) - y*) · clamp(dP/dx, -clip, clip)``. By Theorem 1, training on this
    physical gradient is backpropagation of ``½(P - y*)²`` through the physics with the
    physics derivative clipped per sample: the ``adam-clip-dp`` method of the sine experiment.
    It is *not* the paper's baseline, which clamps the loss gradient ``dL/dx`` of the batch
    loss before it enters the network (:class:`physgrad.experiments.sine.ClampedL1Backprop`):
    clipping ``dP/dx`` acts on nearly every sample early in training and rescales the update
    like a physical gradient, and near a minimum, where ``dP/dx`` is large and ``P - y*`` tiny,
    it shrinks the update.

    Args:
        a: the batch's ``a`` ``(B, 1)``.
        clip: the bound on ``|dP/dx|`` (> 0).
    """

    a: torch.Tensor = field(compare=False)
    clip: float = 1.0

    def __post_init__(self) -> None:
        check_tensor("a", self.a)
        self._store(clip=check_nonnegative_float("clip", self.clip, positive=True))

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = torch.where(x0.abs() < _TINY, torch.full_like(x0, _TINY), x0)
        slope = (-self.a * torch.cos(self.a / x) / x**2).clamp(-self.clip, self.clip)
        return x0 - (torch.sin(self.a / x) - y_target) * slope


def _height(y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
    """``sin(a/x) - y*`` summed per sample: the objective the paper's Newton update minimises."""
    return (y - y_target).reshape(y.shape[0], -1).sum(dim=1)


class SineProblem(Problem):
    """Find ``x`` with ``sin(a/x) = -1`` given ``a``; ``x``, ``y``: ``(B, 1)``; ``condition = a``.

    The experiment's network is fed ``a`` (``y* = -1`` is the same for every sample). Physics
    runs in float64. Metrics: the objective, ``y_l1 = |sin(a/x) + 1|`` and ``x_dist = |x - x*|``
    with ``x*`` the solution nearest to the prediction.
    """

    name = "sine"
    dtype = torch.float64

    def physics(self, batch: Batch) -> Physics:
        """``x (B, 1) -> sin(a / x) (B, 1)`` with this batch's ``a`` ``(B, 1)`` bound.

        A prediction of exactly ``0`` (a float32 output crossing zero: it happens within a few
        hundred iterations of plain backprop) is evaluated at ``x = 1e-12`` instead, where
        ``sin(a/x)`` is as arbitrary as at 0 but finite (``a/0 = inf`` would make the loss NaN).
        Every other ``x`` is untouched.
        """
        a = batch.condition

        def physics(x: torch.Tensor) -> torch.Tensor:
            return torch.sin(a / torch.where(x == 0, torch.full_like(x, _TINY), x))

        return physics

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``a ~ U[0.1, 10.1)`` as ``condition`` ``(B, 1)``, ``y* = -1`` ``(B, 1)``, no ``x_true``
        (float64)."""
        check_positive_int("batch_size", batch_size)
        lo, hi = A_RANGE
        a = lo + (hi - lo) * torch.rand(batch_size, 1, generator=generator, dtype=self.dtype)
        return Batch(y_target=-torch.ones_like(a), x_true=None, condition=a)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """The paper's three sine solvers, bound to this batch's ``a``: ``"analytic"`` (nearest
        minimum), ``"newton"`` (Newton on the height ``sin(a/x) + 1``, walking toward minima),
        ``"inverse-gradient"``, and ``"clipped-gradient"`` (backprop of ``½(P - y*)²`` with
        ``dP/dx`` clipped per sample; not the paper's Adam baseline, which clamps ``dL/dx``)."""
        a = batch.condition
        return {
            "analytic": Analytic(lambda x0, y: nearest_minimum(x0, a), name="nearest-minimum"),
            "newton": Newton(objective=_height, damping=0.0, halvings=0),  # the paper's plain step
            "inverse-gradient": InverseGradient(a),
            "clipped-gradient": ClippedGradientStep(a),
        }

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The base metrics plus ``x_dist`` ``(B,)``, the distance to the nearest solution."""
        out = super().metrics(x, batch)
        with torch.no_grad():
            xd = x.to(self.dtype)
            out["x_dist"] = (xd - nearest_minimum(xd, batch.condition)).abs().reshape(-1)
        return out
