"""The physical-gradient proxy loss (Eq. 5 / Algorithm 1 of the paper) and the protocols around it.

A *physics* is any batched torch callable ``x -> y`` (first dimension = batch).
An *objective* maps ``(y, y_target)`` to one loss value per sample, shape ``(B,)``.
An *inverse solver* maps ``(x0, y_target, physics) -> x_n``: n steps of an inverse method
started at the network's prediction ``x0``.

The network is trained on the proxy loss

    loss = 1/2 || x - stopgrad(solver(x, y_target, physics)) ||^2 ,

whose gradient w.r.t. ``x`` is the *physical gradient* ``x - x_n``: any torch optimizer then
turns it into a parameter update by ordinary backpropagation through the network only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import torch

from physgrad._validation import (
    check_choice,
    check_nonnegative_float,
    check_same_batch,
    check_tensor,
)

Physics = Callable[[torch.Tensor], torch.Tensor]
"""A batched differentiable process ``x (B, *x_shape) -> y (B, *y_shape)``."""

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Per-sample objective ``(y, y_target) -> (B,)``."""

Reduction = Literal["mean", "sum", "none"]


class NonFiniteError(ValueError):
    """A solver's input, the physics' output or derivatives, or the solver's answer is NaN/inf:
    the physical gradient is unusable (the Trainer turns this into ``TrainingDiverged`` with
    the iteration)."""


class NonDifferentiableError(ValueError):
    """The physics cuts the autograd graph (``.detach()``, ``.data``, ``torch.no_grad``, numpy),
    so gradient-based solvers and backpropagation would see a zero gradient."""


NOT_DIFFERENTIABLE_HINT = (
    "is the physics differentiable in x? .detach(), .data, torch.no_grad, numpy or an int "
    "cast inside it cut the gradient"
)

REDUCTIONS = ("mean", "sum", "none")


@runtime_checkable
class InverseSolver(Protocol):
    """``solver(x0, y_target, physics) -> x_n``, batched; ``x_n`` has the shape of ``x0``.

    Shapes: ``x0`` and ``x_n`` are ``(B, *x_shape)``, ``y_target`` is ``(B, *y_shape)``.
    """

    def __call__(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        """Run the inverse method from ``x0 (B, *x_shape)``; return ``x_n (B, *x_shape)``."""
        ...


def sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension except the first (batch): ``(B, ...) -> (B,)``."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def squared_error(y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
    """The default objective ``1/2 ||y - y_target||^2`` per sample, shape ``(B,)``.

    Complex outputs (e.g. Fourier coefficients) use ``|y - y_target|^2``.
    """
    diff = y - y_target
    if diff.is_complex():
        return 0.5 * sum_per_sample(diff.real**2 + diff.imag**2)
    return 0.5 * sum_per_sample(diff**2)


def reduce_batch(per_sample: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """Reduce a ``(B,)`` tensor over the batch with ``"mean"``, ``"sum"`` or ``"none"``."""
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def run_physics(x: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
    """Evaluate ``physics`` in the dtype of ``y_target`` and check the output's batch size.

    This is how the physics runs in float64 while the network runs in float32: pass float64
    observations. The cast is differentiable, so gradients reach a float32 ``x``.

    Args:
        x: ``(B, *x_shape)``.
        y_target: ``(B, *y_shape)``; its dtype is the physics dtype (unless complex).
        physics: batched callable ``x -> y``.

    Returns:
        ``physics(x)``, which must have exactly ``y_target``'s shape ``(B, *y_shape)``.

    Raises:
        NonDifferentiableError: ``x`` requires grad (and grad mode is on) but the output does
            not: the physics cut the autograd graph.
    """
    if x.dtype != y_target.dtype and not y_target.is_complex():
        x = x.to(y_target.dtype)
    y = physics(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"physics must return a torch.Tensor, got {type(y).__name__}")
    if not (y.is_floating_point() or y.is_complex()):  # an int cast: no gradient either
        raise TypeError(f"physics must return a floating-point tensor, got dtype {y.dtype}")
    if x.requires_grad and not y.requires_grad and torch.is_grad_enabled():
        raise NonDifferentiableError(
            f"physics output does not require grad although x does: {NOT_DIFFERENTIABLE_HINT}"
        )
    if y.shape != y_target.shape:
        raise ValueError(
            f"physics output shape {tuple(y.shape)} does not match y_target shape "
            f"{tuple(y_target.shape)}"
        )
    return y


def run_objective(objective: Objective, y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
    """``objective(y, y_target)``, checked to be one value per sample.

    Args:
        objective: per-sample objective ``(y, y_target) -> (B,)``.
        y: physics output, ``(B, *y_shape)``.
        y_target: observations, ``(B, *y_shape)``.

    Returns:
        The ``(B,)`` objective values.

    Raises:
        ValueError: the objective returned another shape (e.g. a scalar already summed over
            the batch, or per-element values).
    """
    value = objective(y, y_target)
    batch = y_target.shape[0]
    if not isinstance(value, torch.Tensor) or value.shape != (batch,):
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"objective must return one value per sample, shape ({batch},), got {got}: "
            "sum over every dimension but the first (physgrad.core.sum_per_sample)"
        )
    return value


def unsupervised_loss(
    x: torch.Tensor,
    y_target: torch.Tensor,
    physics: Physics,
    objective: Objective = squared_error,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """The unsupervised loss of Eq. 2: ``objective(physics(x), y_target)`` reduced over the batch.

    Backpropagating it differentiates through ``physics`` (the plain "Adam through physics"
    baseline). ``x``: ``(B, *x_shape)``; ``y_target``: ``(B, *y_shape)``.
    """
    check_tensor("x", x)
    check_tensor("y_target", y_target)
    check_same_batch("x", x, "y_target", y_target)
    return reduce_batch(run_objective(objective, run_physics(x, y_target, physics), y_target),
                        reduction)


def physical_gradient_loss(
    x: torch.Tensor,
    y_target: torch.Tensor,
    physics: Physics,
    solver: InverseSolver,
    reduction: Reduction = "mean",
    clip: float | None = None,
) -> torch.Tensor:
    """The physical-gradient proxy loss of Eq. 5: ``1/2 ||x - stopgrad(x_n)||^2``.

    ``x_n = solver(x.detach(), y_target, physics)`` is the inverse solver's answer started at
    the prediction. The squared norm is summed over all non-batch dimensions and reduced over
    the batch, so ``d loss / d x`` is the physical gradient ``x - x_n`` (divided by ``B`` for
    ``reduction="mean"``) and gradients flow only into ``x``, never through the solver.

    Args:
        x: network output, ``(B, *x_shape)``, any float dtype; must require grad to train.
        y_target: observations, ``(B, *y_shape)``. The solver and physics run in this dtype.
        physics: batched callable ``x -> y``.
        solver: an :class:`InverseSolver` such as ``physgrad.solvers.Newton()``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch.
        clip: if given (finite, > 0), each component of the physical gradient ``x - x_n`` is
            clamped to ``[-clip, clip]`` (the paper does this for singular Newton steps on
            sin(a/x)).

    Returns:
        A scalar, or a ``(B,)`` tensor for ``reduction="none"``.
    """
    check_tensor("x", x)
    check_tensor("y_target", y_target)
    check_same_batch("x", x, "y_target", y_target)
    if clip is not None:
        clip = check_nonnegative_float("clip", clip, positive=True)
    if not callable(solver):
        raise TypeError(f"solver must be callable (x0, y_target, physics) -> x, got {solver!r}")
    with torch.enable_grad():  # solvers differentiate the physics internally
        dtype = x.dtype if y_target.is_complex() else y_target.dtype
        x_n = solver(x.detach().to(dtype), y_target, physics)
    if not isinstance(x_n, torch.Tensor) or x_n.shape != x.shape:
        shape = tuple(x_n.shape) if isinstance(x_n, torch.Tensor) else type(x_n).__name__
        raise ValueError(f"solver returned {shape}, expected a tensor of shape {tuple(x.shape)}")
    finite = torch.isfinite(x_n.reshape(x_n.shape[0], -1)).all(dim=1)
    if not bool(finite.all()):
        raise NonFiniteError(
            f"physical gradient is NaN/inf for {int((~finite).sum())} of {len(finite)} samples "
            f"(solver {solver!r})"
        )
    step = x.detach() - x_n.detach().to(x.dtype)
    if clip is not None:
        step = step.clamp(-clip, clip)
    target = x.detach() - step
    return reduce_batch(0.5 * sum_per_sample((x - target) ** 2), reduction)
