"""A user's closed-form inverse as a solver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from physgrad.core import Physics
from physgrad.solvers.base import Solver


@dataclass(frozen=True, repr=False)
class Analytic(Solver):
    """Wrap a closed-form (local) inverse ``fn(x0, y_target) -> x``.

    ``x0`` is the network's prediction, so ``fn`` may pick the solution nearest to it
    (e.g. the closest minimum of a periodic function). ``physics`` is not called.

    Args:
        fn: batched callable returning a tensor shaped like ``x0``.
        name: label used in logs and plots (default: ``fn``'s ``__name__``).
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"Analytic needs a callable fn(x0, y_target) -> x, got {self.fn!r}")
        self._store(name=self.name or getattr(self.fn, "__name__", "analytic"))

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = self.fn(x0, y_target)
        if not isinstance(x, torch.Tensor) or x.shape != x0.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"Analytic inverse {self.name!r} returned {got}, expected shape {tuple(x0.shape)}"
            )
        return x
