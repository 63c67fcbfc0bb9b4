"""``heat`` and ``heat-optim``: section 3.3 / B.4, Fig. 5 and Fig. 12 of the paper.

``heat`` trains a U-Net ``x = NN(y*)`` to undo periodic heat diffusion (64×64 unit cells,
``ν·t = 8``, physics in float64, network in float32) on fresh 4–10 soft hot rectangles every
iteration. The prediction's per-sample mean is pinned to that of ``y*`` (diffusion conserves
it; the authors pinned it to the ground truth's, the same number). Network: PhiFlow's
``u_net(1, 1)`` (4 levels, 16 filters, batch norm, 37,697 parameters) with circular padding
(the domain is periodic; PhiFlow 2.2+). Methods (Adam lr 1e-3 for all, as the paper):

- ``adam``: backprop through the diffusion (Eq. 2);
- ``pg-lbfgs``: physical gradients from 32 iterations of L-BFGS started at the prediction,
  our batched pure-torch :class:`~physgrad.solvers.LBFGS` (fast enough for the CPU scale);
- ``pg-lbfgsb``: the same with scipy's L-BFGS-B per sample
  (:class:`~physgrad.solvers.ScipyLBFGSB`, n = 32), the paper's solver: a Python loop over
  the batch (not in the default set). At the cpu scale it trains like ``pg-lbfgs`` and costs
  3.1× an Adam iteration against ``pg-lbfgs``'s 2.0× (``benchmarks/bench_heat_lbfgsb.py``,
  docs/results/heat-lbfgsb);
- ``pg-inverse``: physical gradients from one step of the noise-aware inverse
  (:class:`~physgrad.problems.heat.HeatInverse`, the authors' ``inv_diffuse``);
- ``sgd`` (not in the default set): backprop with SGD lr :data:`SGD_LR`, the authors'
  ``2e-6`` for the batch sum at batch 128 converted to the batch mean (not tuned here).

**Loss reduction.** All methods use the batch *mean*; the authors summed over the batch, which
only rescales the gradient by the batch size (Adam is invariant to it up to its ``eps``).

``heat-optim`` is Fig. 5b: GD (lr 1, as the authors), Adam, L-BFGS-B and the iterated inverse
solver on 4 examples (:func:`heat_single_problem`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from physgrad.experiments.base import (
    Experiment,
    FigureExperiment,
    MethodSpec,
    Scale,
    register,
)
from physgrad.experiments.pde_figures import pde_figures
from physgrad.experiments.single_problem import (
    SingleProblemCurves,
    single_problem_curves,
    single_problem_figure,
)
from physgrad.nets import UNet, adapt, single_channel
from physgrad.problems.base import Batch
from physgrad.problems.heat import HeatInverse, HeatProblem, fix_mean
from physgrad.solvers import LBFGS, ScipyLBFGSB
from physgrad.training.methods import Physical, Unsupervised
from physgrad.training.optimizers import OptimizerSpec

ADAM_LR = 1e-3
SGD_LR = 2e-6 * 128
"""The authors' SGD lr (batch sum, batch 128) for our batch-mean loss; untuned."""
LBFGS_STEPS = 32

SINGLE_ADAM_LR = 0.1
"""Adam on ``x`` in the single-problem curves: the best of {0.003, 0.01, 0.03, 0.1} on the 4
examples (``‖x − x*‖₁`` after 100 iterations)."""
SINGLE_ABS_NOISE = 1e-8
"""Absolute noise floor of the iterated inverse, as the authors' ``plot_heat_optim.py``."""


def heat_network(levels: int = 4, filters: int = 16) -> UNet:
    """PhiFlow ``u_net(1, 1)`` with circular padding, fed ``y*`` ``(B, X, Y)``, returning
    ``(B, X, Y)`` (its channel axis added and removed by :func:`~physgrad.nets.single_channel`);
    fed a batch, its prediction's mean is pinned to the observation's (:func:`pinned_mean`)."""
    network = UNet(1, 1, levels=levels, filters=filters, padding_mode="circular")
    return adapt(single_channel(network), output=pinned_mean)


def pinned_mean(raw: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``x``: the raw output ``(B, X, Y)`` with each sample's mean set to that of ``y*``
    (diffusion keeps the mean), in the problem dtype, differentiable w.r.t. ``raw``. The
    authors used the ground truth's mean, the same number since ``mean(y*) = mean(x*)``."""
    if tuple(raw.shape) != tuple(batch.y_target.shape):
        raise ValueError(
            f"network output shape {tuple(raw.shape)} does not match the observations "
            f"{tuple(batch.y_target.shape)}"
        )
    return fix_mean(raw, batch.y_target)


_adam = OptimizerSpec("adam", ADAM_LR)
_sgd = OptimizerSpec("sgd", SGD_LR, {"momentum": 0.9})


HEAT = register(
    Experiment(
        name="heat",
        description="64x64 periodic, nu*t = 8, U-Net; Adam vs Adam + PG (L-BFGS, inverse)",
        paper="Sec. 3.3, B.4, Fig. 5c, 12",
        scales={
            "smoke": Scale(iterations=3, batch_size=4),
            "cpu": Scale(iterations=300, batch_size=16),
            "long": Scale(iterations=5_000, batch_size=32),
            "paper": Scale(iterations=10_000, batch_size=128),
        },
        problem=HeatProblem,
        network=heat_network,
        methods={
            "adam": MethodSpec("Adam", Unsupervised, _adam),
            "pg-lbfgs": MethodSpec(
                "Adam + PG (L-BFGS, n=32)",
                lambda: Physical(LBFGS(steps=LBFGS_STEPS), name="pg-lbfgs"),
                _adam,
            ),
            "pg-lbfgsb": MethodSpec(
                "Adam + PG (scipy L-BFGS-B, n=32)",
                lambda: Physical(ScipyLBFGSB(steps=LBFGS_STEPS), name="pg-lbfgsb"),
                _adam,
            ),
            "pg-inverse": MethodSpec("Adam + PG (inverse)", lambda: Physical("inverse"), _adam),
            "sgd": MethodSpec("SGD (momentum 0.9)", Unsupervised, _sgd),
        },
        default_methods=("adam", "pg-lbfgs", "pg-inverse"),
        baseline="adam",
        metrics=("x_l1", "y_l2"),
        smoothing=64,
        figures=pde_figures,
    )
)


def heat_single_problem(
    n_iter: int = 100,
    out_path: Path | str | None = None,
    *,
    examples: int = 4,
    seed: int = 0,
    batch: Batch | None = None,
    problem: HeatProblem | None = None,
) -> SingleProblemCurves:
    """Fig. 5b: GD (lr 1), Adam (lr :data:`SINGLE_ADAM_LR`), L-BFGS-B and the noise-aware
    inverse (``abs_noise`` :data:`SINGLE_ABS_NOISE`) from ``x0 = 0`` on ``examples`` 64×64
    problems (float64), or on ``batch`` if given, with ``problem``'s physics if given (e.g. a
    configured experiment's)."""
    problem = problem if problem is not None else HeatProblem()
    return single_problem_curves(
        problem,
        n_iter,
        out_path,
        gd_lr=1.0,
        adam_lr=SINGLE_ADAM_LR,
        inverse=HeatInverse(problem.amount, abs_noise=SINGLE_ABS_NOISE),
        examples=examples,
        seed=seed,
        batch=batch,
        title=f"Heat {problem.shape[0]}x{problem.shape[1]}, nu*t = {problem.amount:g}",
        inverse_label=f"inv_diffuse, abs noise {SINGLE_ABS_NOISE:g}",
    )


HEAT_OPTIM = register(
    FigureExperiment(
        name="heat-optim",
        description="heat 64x64 single problems: GD, Adam, L-BFGS-B, noise-aware inverse",
        paper="Sec. 3.3, B.4, Fig. 5b",
        make=single_problem_figure("heat-optim (Fig. 5b)", heat_single_problem),
    )
)

