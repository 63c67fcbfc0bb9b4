"""``wavepacket``: appendix B.1, Fig. 1 and Fig. 8 of the paper (wave-packet fit).

A :class:`~physgrad.nets.WavePacketNet` learns ``(ξ0, A)`` from noisy series
(:class:`~physgrad.problems.wavepacket.WavePacketProblem`), trained with Adam (lr 1e-3, batch
100) through the physics, with physical gradients from Gauss-Newton or batched L-BFGS, or
supervised on the ground truth. The reference is the iterative fit the paper compares with:
L-BFGS-B per example from the fixed guess ``(ξ0, A) = (128, 2)``, run to convergence
(:func:`lbfgs_baseline`). It only finds packets near its initial guess; the network, trained
jointly on all examples, finds them everywhere.

Figures (Fig. 8 with the L-BFGS-B level, Fig. 1 panel, error vs ``ξ0*``):
:func:`physgrad.experiments.wavepacket_figures.wavepacket_figures`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
import torch

from physgrad._validation import (
    check_choice,
    check_nonnegative_float,
    check_positive_int,
    check_tensor,
)
from physgrad.experiments.base import Experiment, MethodSpec, Result, Scale, register
from physgrad.experiments.runner import Comparison
from physgrad.nets import WavePacketNet
from physgrad.problems.wavepacket import LENGTH, NOISE_STD, XI0_RANGE, WavePacketProblem
from physgrad.solvers import LBFGS, GaussNewton, ScipyLBFGSB
from physgrad.training.methods import Physical, Supervised, Unsupervised
from physgrad.training.optimizers import OptimizerSpec

LR = 1e-3
"""Adam learning rate (B.1)."""
GN_DAMPING = 1.0
"""Levenberg-Marquardt damping of the Gauss-Newton PG solver, in units of ``JᵀJ`` (see below)."""
LBFGS_STEPS = 8
"""Iterations of the batched L-BFGS PG solver per training step."""
CONVERGED_TOL = 2.0
"""A fit has found the packet when ``|ξ0 - ξ0*| <`` this many samples (0.1 σ)."""
DIVERGED_XI0 = (-float(LENGTH), 2.0 * LENGTH)
"""A fit has diverged when it is non-finite or ``ξ0`` leaves this range (one series length
beyond either end of the grid: the packet has left the data for good) ..."""
DIVERGED_AMPLITUDE = 100.0
"""... or ``|A|`` exceeds this (25x the largest true amplitude)."""
BINS = 8
"""Number of ``ξ0*`` bins in the baseline's per-position summary."""

Backend = Literal["scipy", "torch"]


_adam = OptimizerSpec("adam", LR)


def fit_lbfgs(
    y_target: torch.Tensor,
    *,
    solver: Backend = "scipy",
    steps: int = 1000,
    problem: WavePacketProblem | None = None,
) -> torch.Tensor:
    """Fit every series independently with L-BFGS(-B) from the paper's guess ``(128, 2)``.

    Args:
        y_target: noisy series ``(B, 256)``; fitted in float64.
        solver: ``"scipy"`` (:class:`~physgrad.solvers.ScipyLBFGSB`, the paper's reference;
            about 0.1 s per example on one core) or ``"torch"`` (batched
            :class:`~physgrad.solvers.LBFGS` with backtracking only, which takes no step longer
            than the quasi-Newton one and so stays even closer to the guess).
        steps: maximum iterations per example ("to convergence": stops earlier on scipy's
            ``ftol``/``gtol`` or when the gradient vanishes).
        problem: the physics (default :class:`WavePacketProblem`).

    Returns:
        ``(B, 2)`` float64 fits ``(ξ0, A)``.
    """
    check_tensor("y_target", y_target, min_dim=2)
    check_choice("solver", solver, ("scipy", "torch"))
    check_positive_int("steps", steps)
    problem = problem or WavePacketProblem()
    y = y_target.detach().to(problem.dtype)
    if y.dim() != 2 or y.shape[1] != problem.length:
        raise ValueError(
            f"y_target must have shape (B, {problem.length}), got {tuple(y_target.shape)}"
        )
    impl = ScipyLBFGSB(steps=steps) if solver == "scipy" else LBFGS(steps=steps)
    x0 = problem.initial_guess(y.shape[0]).to(y.device)
    return impl(x0, y, problem.forward)


def diverged(x: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: fits ``(B, 2)`` that are non-finite or far outside the domain (see
    :data:`DIVERGED_XI0`, :data:`DIVERGED_AMPLITUDE`)."""
    finite = torch.isfinite(x).all(dim=1)
    xi0 = x[:, 0].nan_to_num(0.0)
    amplitude = x[:, 1].nan_to_num(0.0)
    outside = (xi0 < DIVERGED_XI0[0]) | (xi0 > DIVERGED_XI0[1])
    return ~finite | outside | (amplitude.abs() > DIVERGED_AMPLITUDE)


def lbfgs_baseline(
    n: int = 500,
    seed: int = 1234,
    *,
    solver: Backend = "scipy",
    steps: int = 1000,
    noise_std: float = NOISE_STD,
    converged_tol: float = CONVERGED_TOL,
    bins: int = BINS,
) -> dict[str, Any]:
    """The paper's iterative reference: L-BFGS-B per example from ``(128, 2)`` to convergence.

    Draws ``n`` problems with ``torch.Generator().manual_seed(seed)`` (the same draw as
    ``WavePacketProblem(noise_std).sample(n, generator)``), fits them with :func:`fit_lbfgs`
    and summarises. Also scores "random guessing" (``x`` drawn from the prior) on the same
    examples, the other reference level of Fig. 8.

    Args:
        n: number of examples (>= 1). scipy needs about 0.1 s each on one core.
        seed: seed of the data generator.
        solver: ``"scipy"`` or ``"torch"``, see :func:`fit_lbfgs`.
        steps: maximum iterations per example.
        noise_std: noise standard deviation of the data.
        converged_tol: ``|ξ0 - ξ0*|`` (samples) below which a fit counts as converged.
        bins: number of equal-width ``ξ0*`` bins over ``[25.6, 230.4)`` for the per-position
            summary.

    Returns:
        A JSON-serialisable dict: ``converged`` and ``diverged`` (fractions in [0, 1]),
        ``objective``, ``xi0_mae``, ``amp_mae``, ``x_l1`` (means over the non-diverged fits;
        ``objective`` is ``½‖P(x) - y*‖²``), ``random`` (the same means for random guesses),
        ``bins`` (``edges``, per-bin ``count``, ``converged``, ``xi0_mae``), per-example lists
        ``xi0_true``, ``amp_true``, ``xi0_fit``, ``amp_fit``, ``objective_per_example``, and the
        settings ``n``, ``seed``, ``solver``, ``steps``, ``noise_std``, ``converged_tol``,
        ``seconds`` (wall time of the fits).
    """
    check_positive_int("n", n)
    check_positive_int("bins", bins)
    converged_tol = check_nonnegative_float("converged_tol", converged_tol, positive=True)
    problem = WavePacketProblem(noise_std=noise_std)
    generator = torch.Generator().manual_seed(int(seed))
    batch = problem.sample(n, generator)
    start = time.perf_counter()
    x = fit_lbfgs(batch.y_target, solver=solver, steps=steps, problem=problem)
    seconds = time.perf_counter() - start
    bad = diverged(x)
    metrics = problem.metrics(x.nan_to_num(0.0), batch)
    xi0_err = metrics["xi0_mae"]
    good = ~bad
    converged = good & (xi0_err < converged_tol)

    random_x = problem.sample_x(n, generator)
    random_metrics = problem.metrics(random_x, batch)

    def mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> float:
        values = values if mask is None else values[mask]
        return float(values.mean()) if values.numel() else math.nan

    edges = np.linspace(*XI0_RANGE, bins + 1)
    which = np.clip(np.digitize(batch.x_true[:, 0].numpy(), edges) - 1, 0, bins - 1)
    counts, conv_bins, mae_bins = [], [], []
    for k in range(bins):
        sel = torch.from_numpy(which == k)
        counts.append(int(sel.sum()))
        conv_bins.append(mean(converged.double(), sel))
        mae_bins.append(mean(xi0_err, sel & good))

    keys = ("objective", "xi0_mae", "amp_mae", "x_l1")
    return {
        "n": n,
        "seed": int(seed),
        "solver": solver,
        "steps": steps,
        "noise_std": problem.noise_std,
        "converged_tol": converged_tol,
        "seconds": seconds,
        "converged": mean(converged.double()),
        "diverged": mean(bad.double()),
        **{k: mean(metrics[k], good) for k in keys},
        "random": {k: mean(random_metrics[k]) for k in keys},
        "bins": {
            "edges": edges.tolist(),
            "count": counts,
            "converged": conv_bins,
            "xi0_mae": mae_bins,
        },
        "xi0_true": batch.x_true[:, 0].tolist(),
        "amp_true": batch.x_true[:, 1].tolist(),
        "xi0_fit": x[:, 0].tolist(),
        "amp_fit": x[:, 1].tolist(),
        "objective_per_example": metrics["objective"].tolist(),
    }


WAVEPACKET = register(
    Experiment(
        name="wavepacket",
        description=(
            "wave packet A sin(4ξ) exp(-½(ξ-ξ0)²/20²) + N(0, 0.1²) noise: find (ξ0, A); "
            "conv net, Adam lr 1e-3, batch 100"
        ),
        paper="B.1, Fig. 1, Fig. 8",
        scales={
            "smoke": Scale(iterations=30, batch_size=8),
            "cpu": Scale(iterations=1500, batch_size=100),
            # B.1: batch 100; the length of Fig. 8's axis is lost in our copy of the text
            "paper": Scale(iterations=10_000, batch_size=100),
        },
        problem=WavePacketProblem,
        network=WavePacketNet,
        methods={
            "adam": MethodSpec("Adam", Unsupervised, _adam),
            # One Levenberg-Marquardt step from the prediction. JᵀJ is diagonal with
            # σ√π/2 ≈ 17.7 for A and A²√π/(4σ) ≈ 0.022 A² for ξ0 (samples⁻²), so damping 1
            # barely changes the A step but turns the ξ0 step into a gradient step of at
            # most unit size: far from the packet (no overlap) the ξ0 gradient is only
            # noise, and an undamped step would follow it. Damping 0.1 trains slower on A.
            "pg-gauss-newton": MethodSpec(
                "Adam + PG (Gauss-Newton)",
                lambda: Physical(
                    GaussNewton(steps=1, damping=GN_DAMPING, relative=False, halvings=0),
                    name="pg-gauss-newton",
                ),
                _adam,
            ),
            "pg-lbfgs": MethodSpec(
                f"Adam + PG (L-BFGS, n={LBFGS_STEPS})",
                lambda: Physical(LBFGS(steps=LBFGS_STEPS), name="pg-lbfgs"),
                _adam,
            ),
            "supervised": MethodSpec("Adam (supervised, x*)", Supervised, _adam),
        },
        default_methods=("adam", "pg-gauss-newton", "pg-lbfgs", "supervised"),
        baseline="adam",
        metrics=("objective", "xi0_mae", "amp_mae"),
        smoothing=50,
        figures=lambda comparison: _figures(comparison),
    )
)

# held-out examples for the L-BFGS-B baseline and the Fig. 1 / Fig. 8 figures, per scale
_BASELINE_EXAMPLES = {"smoke": 16, "cpu": 500, "paper": 2000}


def _figures(comparison: Comparison) -> Result:
    from physgrad.experiments.wavepacket_figures import wavepacket_figures

    return wavepacket_figures(comparison, n=_BASELINE_EXAMPLES.get(comparison.scale, 500))
