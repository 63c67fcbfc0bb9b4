"""Held-out evaluation: the trained network scored on a fixed set of problems it never saw.

Training-batch metrics mix the network's progress with the difficulty of each fresh batch and
(for running means) with the huge losses of the first iterations. The held-out set is drawn
once from its own seed (:data:`HELDOUT_SEED`, never a training seed), so every method, seed and
iteration of an experiment is scored on the same problems.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from torch import nn

from physgrad._validation import check_positive_int
from physgrad.problems.base import Batch, Problem

HELDOUT_SEED = 2**31 - 1
"""Seed of the held-out problems (training seeds are small integers)."""
CALIBRATION_SEED = 2**31 - 2
"""Seed of the problems batch-norm statistics are re-estimated on before scoring
(:func:`with_precise_batchnorm`): neither a training seed nor the held-out set."""


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


def _chunks(batch: Batch, chunk: int, device: torch.device | str | None) -> Iterator[Batch]:
    """``batch`` in consecutive parts of ``chunk`` problems, each moved to ``device``."""
    for start in range(0, len(batch), chunk):
        part = batch[start : start + chunk]
        yield part if device is None else part.to(device)


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
            mode, as it will be used after training (the Trainer first re-estimates its
            batch-norm statistics: :func:`with_precise_batchnorm`).
        batch: the held-out problems, ``N`` samples.
        chunk: problems per forward pass (bounds memory; results do not depend on it except
            through floating-point summation order).
        device: where to evaluate (default: where ``batch`` lives).

    Returns:
        ``{metric name: mean over the N problems}`` as Python floats.
    """
    check_positive_int("chunk", chunk)
    per_sample: dict[str, list[torch.Tensor]] = {}
    for part in _chunks(batch, chunk, device):
        for name, value in problem.metrics(predict(part), part).items():
            per_sample.setdefault(name, []).append(value.detach().reshape(-1).double())
    names = list(per_sample)
    means = torch.stack([torch.cat(per_sample[n]).mean() for n in names]).tolist()
    return dict(zip(names, means, strict=True))


def _tracked_batchnorms(network: nn.Module) -> Iterator[nn.modules.batchnorm._BatchNorm]:
    return (
        m for m in network.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    )


def has_batchnorm(network: nn.Module) -> bool:
    """True when ``network`` has a batch-norm layer that tracks running statistics."""
    return any(True for _ in _tracked_batchnorms(network))


@torch.no_grad()
def with_precise_batchnorm(
    network: nn.Module,
    inputs: Callable[[Batch], torch.Tensor],
    calibration: Batch,
    *,
    chunk: int = 64,
    device: torch.device | str | None = None,
) -> nn.Module:
    """A copy of ``network`` in eval mode whose batch-norm statistics are re-estimated for its
    current weights ("precise BN", Wu & Johnson 2021): the exact average of the per-chunk
    batch statistics over ``calibration``, instead of the running averages kept during
    training.

    Why: training keeps running averages with momentum 0.1, so they describe the weights of
    the last ~10 iterations, not the current ones. When a method changes the weights quickly
    (physical gradients do, early and in bursts) the eval-mode network is scored with stale
    statistics: a heat PG network at 5,000 iterations scored 101.0 in plain eval mode and 71.5
    with re-estimated statistics, its Adam twin 175.0 vs 162.1 (docs/evaluation.md). Scoring after
    re-estimation measures the weights, not how recently they moved.

    Args:
        network: the network (left untouched: mode, statistics and weights).
        inputs: ``batch -> what the network is called with`` (``lambda b: b`` for a network
            adapted to take the batch, :func:`physgrad.nets.adapt`).
        calibration: problems from the training distribution, drawn once with
            :data:`CALIBRATION_SEED`; never the held-out set.
        chunk: problems per forward pass (the batch size of the statistics).
        device: where to run (default: where ``calibration`` lives).

    Returns:
        The re-estimated copy, in eval mode; ``network`` itself is returned (unchanged, in its
        own mode) when it has no batch norm.
    """
    check_positive_int("chunk", chunk)
    if not has_batchnorm(network):
        return network
    estimate = copy.deepcopy(network)
    for module in _tracked_batchnorms(estimate):
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the calibration chunks
    estimate.train()
    for part in _chunks(calibration, chunk, device):
        estimate(inputs(part))
    return estimate.eval()
