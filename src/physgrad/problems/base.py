"""A Problem binds a physics to a task: how observations are drawn, judged and inverted."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from physgrad.core import InverseSolver, Physics, run_physics, squared_error, sum_per_sample


@dataclass(frozen=True)
class Batch:
    """One mini-batch of inverse problems.

    Attributes:
        y_target: observations ``(B, *y_shape)``, in the physics dtype.
        x_true: the ground truth ``(B, *x_shape)`` that produced them, or ``None`` when only
            observations exist (real data) or the solution is not unique. Only metrics and
            the supervised method read it.
        condition: known per-sample parameters of the process ``(B, ...)`` (e.g. ``a`` in
            sin(a/x)), or ``None``. :meth:`Problem.physics` binds them into the physics.
    """

    y_target: torch.Tensor
    x_true: torch.Tensor | None = None
    condition: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # shapes and types only: a mismatch fails here, not in a metric or the physics later
        if not isinstance(self.y_target, torch.Tensor) or self.y_target.dim() < 1:
            got = (f"shape {tuple(self.y_target.shape)}" if isinstance(self.y_target, torch.Tensor)
                   else type(self.y_target).__name__)
            raise TypeError(f"Batch y_target must be a tensor (B, *y_shape), got {got}")
        for name in ("x_true", "condition"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"Batch {name} must be a tensor or None, got "
                                f"{type(value).__name__}")
            if value.dim() < 1 or value.shape[0] != self.y_target.shape[0]:
                raise ValueError(
                    f"Batch {name} has shape {tuple(value.shape)}, but y_target has "
                    f"{self.y_target.shape[0]} samples"
                )

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return self._map(lambda t: t.to(device))

    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> Batch:
        """The samples ``index`` selects (a slice, indices or a mask over the batch)."""
        return self._map(lambda t: t[index])

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        def apply(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        return Batch(fn(self.y_target), apply(self.x_true), apply(self.condition))

    def __len__(self) -> int:
        return self.y_target.shape[0]


def _check_physics_signature(cls: type) -> None:
    """Catch problems written for the earlier API, ``physics(self, x) -> y``: today's
    ``physics(self, batch)`` returns the forward function, so an old subclass would otherwise
    fail deep inside training with an error about a Batch in arithmetic."""
    physics = cls.__dict__.get("physics")
    if physics is None or not callable(physics):
        return
    params = list(inspect.signature(physics).parameters.values())[1:]
    first = params[0] if params else None
    if first is not None and (first.name == "x" or first.annotation in (torch.Tensor,
                                                                        "torch.Tensor")):
        raise TypeError(
            f"{cls.__name__}.physics({first.name}) maps x to y, but Problem.physics(batch) "
            "returns the forward function: rename it to forward(self, x) (docs/own-physics.md)"
        )


def _check_no_network_methods(cls: type) -> None:
    """Catch problems written when a Problem also mapped the network's input and output."""
    for name in ("network_input", "network_output"):
        if name in cls.__dict__:
            raise TypeError(
                f"{cls.__name__}.{name} is no longer a Problem method: adapt the network in its "
                f"factory instead, physgrad.nets.adapt(net, inputs=..., output=...) "
                "(docs/own-physics.md)"
            )


class Problem:
    """Base class for inverse problems. Subclasses implement :meth:`physics` (or ``forward(x)``
    for a physics that is the same for every batch) and :meth:`sample`; :meth:`objective`,
    :meth:`solvers` and :meth:`metrics` have defaults.

    The objective defaults to ``1/2 ||P(x) - y*||^2`` and the metrics to the x-space and
    y-space errors the paper logs (``x_l1``, ``y_l1``, ``y_l2``). What a network is fed and how
    its output becomes ``x`` is the network factory's business (:func:`physgrad.nets.adapt`).
    """

    name: str = "problem"
    dtype: torch.dtype = torch.float32
    """dtype of the physics and of the observations (float64 runs physics in double)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _check_physics_signature(cls)
        _check_no_network_methods(cls)

    def physics(self, batch: Batch) -> Physics:
        """The forward process of this batch, ``x (B, *x_shape) -> y (B, *y_shape)``, as a
        plain callable (with ``batch.condition`` bound, for problems that have one). Default:
        the problem's ``forward(x)``, for a physics that is the same for every batch.

        Args:
            batch: the mini-batch (only its ``condition`` and size matter).

        Returns:
            A callable taking ``x`` ``(B, *x_shape)`` in the problem's ``dtype`` to ``y``
            ``(B, *y_shape)``, differentiable w.r.t. ``x``.
        """
        forward = getattr(self, "forward", None)
        if forward is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither physics nor forward")
        return forward

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` fresh problems using only ``generator`` for randomness.

        Args:
            batch_size: ``B``.
            generator: the only source of randomness.

        Returns:
            A :class:`Batch` with ``y_target`` ``(B, *y_shape)`` (and ``x_true``
            ``(B, *x_shape)`` where known).
        """
        raise NotImplementedError

    def objective(self, y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        """Per-sample objective ``(B,)``; default ``1/2 ||y - y*||^2``.

        Args:
            y: physics output ``(B, *y_shape)``.
            y_target: observations ``(B, *y_shape)``.

        Returns:
            ``(B,)`` objective values.
        """
        return squared_error(y, y_target)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """Domain-specific inverse solvers by name for this batch (bound to its
        ``condition`` where they depend on it); empty if the problem has none."""
        return {}

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-sample metrics ``{name: (B,)}`` of a prediction ``x``, without gradients.

        Args:
            x: prediction ``(B, *x_shape)``.
            batch: the mini-batch it was predicted for.

        Returns:
            ``{name: (B,) tensor}``: ``objective``, ``y_l1``, ``y_l2`` and, when
            ``batch.x_true`` is known, ``x_l1``.
        """
        with torch.no_grad():
            y = run_physics(x, batch.y_target, self.physics(batch))
            diff = y - batch.y_target
            out = {
                "objective": self.objective(y, batch.y_target),
                "y_l1": sum_per_sample(diff.abs()),
                "y_l2": 0.5 * sum_per_sample(diff.abs() ** 2),
            }
            if batch.x_true is not None:
                out["x_l1"] = sum_per_sample((x.to(batch.x_true.dtype) - batch.x_true).abs())
            return out
