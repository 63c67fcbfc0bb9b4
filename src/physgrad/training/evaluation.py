"""Held-out evaluation: the trained network scored on a fixed set of problems it never saw.

Training-batch metrics mix the network's progress with the difficulty of each fresh batch and
(for running means) with the huge losses of the first iterations. The held-out set is drawn
once from its own seed (:data:`HELDOUT_SEED`, never a training seed), so every method, seed and
iteration of an experiment is scored on the same problems.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from physgrad._validation import check_positive_int
from physgrad.problems.base import Batch, Problem

HELDOUT_SEED = 2**31 - 1
"""Seed of the held-out problems (training seeds are small integers)."""


def heldout_batch(problem: Problem, size: int, seed: int = HELDOUT_SEED) -> Batch:
    """``size`` problems drawn once from ``problem.sample`` with their own generator.

    Args:
        problem: the inverse problem.
        size: number of held-out problems ``N``.
        seed: generator seed (default :data:`HELDOUT_SEED`).

    Returns:
        A :class:`~physgrad.problems.base.Batch` of ``N`` problems (on the CPU).
    """
    check_positive_int("held-out size", size)
    return problem.sample(size, torch.Generator().manual_seed(seed))


def _part(batch: Batch, part: slice) -> Batch:
    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[part]

    return Batch(batch.y_target[part], cut(batch.x_true), cut(batch.condition))


@torch.no_grad()
def evaluate(
    problem: Problem,
    predict: Callable[[Batch], torch.Tensor],
    batch: Batch,
    *,
    chunk: int = 64,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean of every ``problem.metrics`` over the held-out ``batch``.

    Args:
        problem: the inverse problem (its ``metrics(x, batch)`` give per-sample values).
        predict: ``batch -> x`` of shape ``(B, *x_shape)``; call it with the network in eval
            mode (batch-norm running statistics), as it will be used after training.
        batch: the held-out problems, ``N`` samples.
        chunk: problems per forward pass (bounds memory; results do not depend on it except
            through floating-point summation order).
        device: where to evaluate (default: where ``batch`` lives).

    Returns:
        ``{metric name: mean over the N problems}`` as Python floats.
    """
    check_positive_int("chunk", chunk)
    per_sample: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(batch), chunk):
        part = _part(batch, slice(start, start + chunk))
        if device is not None:
            part = part.to(device)
        for name, value in problem.metrics(predict(part), part).items():
            per_sample.setdefault(name, []).append(value.detach().reshape(-1).double())
    names = list(per_sample)
    means = torch.stack([torch.cat(per_sample[n]).mean() for n in names]).tolist()
    return dict(zip(names, means, strict=True))
