"""How the network's gradient is formed: one small class per method.

A method turns the network's prediction ``x`` for a :class:`~physgrad.problems.Batch` into a
scalar loss whose gradient w.r.t. the network parameters is the update direction. Any torch
optimizer then steps on it. To add a method subclass :class:`Method` and implement
:meth:`Method.loss`; a method that needs the network itself (e.g. half-inverse gradients,
:class:`physgrad.training.HalfInverse`) also implements :meth:`Method.setup`.
"""

from __future__ import annotations

import torch
from torch import nn

from physgrad._validation import check_choice, check_nonnegative_float
from physgrad.core import (
    REDUCTIONS,
    InverseSolver,
    Reduction,
    physical_gradient_loss,
    reduce_batch,
    sum_per_sample,
    unsupervised_loss,
)
from physgrad.problems.base import Batch, Problem
from physgrad.solvers.gd import GradientDescent
from physgrad.training.optimizers import OptimizerFactory, OptimizerSpec


def resolve_solver(solver: InverseSolver | str, batch: Batch, problem: Problem) -> InverseSolver:
    """Return ``solver``, or look a domain solver up by name in ``problem.solvers(batch)``."""
    if not isinstance(solver, str):
        return solver
    available = problem.solvers(batch)
    if solver not in available:
        known = ", ".join(available) or "none"
        raise ValueError(f"unknown solver {solver!r} for problem {problem.name!r}; it has: {known}")
    return available[solver]


class Method:
    """Base class. ``name`` labels curves and run folders.

    ``optimizer`` is the optimizer the method's update is designed for (an
    :class:`~physgrad.training.optimizers.OptimizerSpec` or a factory ``params ->
    optimizer``), or ``None`` when any optimizer works (then
    :func:`~physgrad.experiments.compare_methods` and ``--problem`` use Adam);
    :class:`~physgrad.training.HalfInverse` sets plain SGD at lr 1.
    """

    name: str = "method"
    optimizer: OptimizerSpec | OptimizerFactory | None = None

    def __init__(self, reduction: Reduction = "mean"):
        self.reduction = check_choice("reduction", reduction, REDUCTIONS[:2])

    def setup(self, network: nn.Module) -> None:
        """Called once by the :class:`~physgrad.training.Trainer` with the network it trains,
        after the optimizer is built and before the first iteration. The default does nothing;
        methods that differentiate the network themselves keep a reference here."""

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        """Scalar training loss for the prediction ``x`` ``(B, *x_shape)``.

        Args:
            x: the network's prediction ``(B, *x_shape)``, requiring grad.
            batch: the mini-batch it was predicted for (``y_target`` ``(B, *y_shape)``).
            problem: supplies the physics, objective and domain solvers.

        Returns:
            A scalar (0-dim) tensor; its gradient w.r.t. the network parameters is the update
            direction.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Unsupervised(Method):
    """Backpropagation through the physics (Eq. 2): minimise ``objective(P(x), y*)``.

    Args:
        clip: if given, each component of ``dL/dx`` is clamped to ``[-clip, clip]`` before it
            enters the network (the paper clips on sin(a/x), whose gradient is unbounded).
            Implemented as the physical-gradient loss with one unit gradient-descent step,
            which has exactly the unclipped gradient (Theorem 1), so clipping is the only
            difference.
        reduction: ``"mean"`` or ``"sum"`` over the batch.
    """

    name = "unsupervised"

    def __init__(self, clip: float | None = None, reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.clip = None if clip is None else check_nonnegative_float("clip", clip, positive=True)

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        if self.clip is None:
            return unsupervised_loss(
                x, batch.y_target, problem.physics(batch), problem.objective, self.reduction
            )
        solver = GradientDescent(lr=1.0, steps=1, objective=problem.objective)
        return physical_gradient_loss(
            x, batch.y_target, problem.physics(batch), solver, self.reduction, clip=self.clip
        )


class Supervised(Method):
    """Supervised training on labels (Eq. 3): ``1/2 ||x - x_label||^2``.

    Labels are the ground truth ``batch.x_true``, or, when ``label_solver`` is given, the
    solution that solver finds from the fixed ``initial_guess`` (the paper's "supervised"
    baseline: labels precomputed by an iterative solver, which picks one of several minima).

    Args:
        label_solver: inverse solver (or domain-solver name) producing labels; ``None`` uses
            ``batch.x_true``.
        initial_guess: constant start for ``label_solver`` (same units as x).
        reduction: ``"mean"`` or ``"sum"`` over the batch.
    """

    name = "supervised"

    def __init__(
        self,
        label_solver: InverseSolver | str | None = None,
        initial_guess: float = 0.0,
        reduction: Reduction = "mean",
    ):
        super().__init__(reduction)
        self.label_solver = label_solver
        self.initial_guess = float(initial_guess)

    def labels(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        """Labels ``(B, *x_shape)`` in ``x``'s dtype.

        ``batch.x_true``, or ``label_solver`` run from ``initial_guess`` when one is given.
        """
        if self.label_solver is None:
            if batch.x_true is None:
                raise ValueError("supervised training needs x_true labels or a label_solver")
            return batch.x_true.to(x.dtype)
        x0 = torch.full_like(batch.y_target.new_empty(x.shape), self.initial_guess)
        solver = resolve_solver(self.label_solver, batch, problem)
        return solver(x0, batch.y_target, problem.physics(batch)).to(x.dtype)

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        labels = self.labels(x, batch, problem).detach()
        return reduce_batch(0.5 * sum_per_sample((x - labels) ** 2), self.reduction)


class Physical(Method):
    """Physical gradients (Eq. 5): train toward ``solver(x, y*)`` started at the prediction.

    Args:
        solver: any inverse solver, e.g. ``Newton()``, ``LBFGS(32)``, or the name of one of
            the problem's domain solvers (``problem.solvers(batch)[name]``).
        clip: optional clamp of the physical gradient ``x - x_n`` per component.
        reduction: ``"mean"`` or ``"sum"`` over the batch.
        name: label for plots (default ``"pg-<solver>"``).
    """

    def __init__(
        self,
        solver: InverseSolver | str,
        clip: float | None = None,
        reduction: Reduction = "mean",
        name: str | None = None,
    ):
        super().__init__(reduction)
        if not (callable(solver) or isinstance(solver, str)):
            raise TypeError(f"Physical needs an inverse solver or a solver name, got {solver!r}")
        self.solver = solver
        self.clip = None if clip is None else check_nonnegative_float("clip", clip, positive=True)
        label = solver if isinstance(solver, str) else type(solver).__name__.lower()
        self.name = name or f"pg-{label}"

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        solver = resolve_solver(self.solver, batch, problem)
        physics = problem.physics(batch)
        return physical_gradient_loss(
            x, batch.y_target, physics, solver, self.reduction, clip=self.clip
        )
