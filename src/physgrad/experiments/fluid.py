"""``fluid``: section 3.4 / B.5, Fig. 6 and Fig. 13 of the paper.

A U-Net ``v0 = NN(m0, mT)`` infers the initial velocity of a periodic incompressible flow
(64 x 64 cells, 128 x 128 domain, 8 steps of ``dt = 0.25``) from the initial and final marker
(:class:`~physgrad.problems.fluid.FluidProblem`; fresh examples from the authors' data
generator every iteration). Network: PhiFlow's ``u_net(2, 2, levels=5, filters=16)``
(49,570 parameters) with circular padding (periodic domain; PhiFlow 2.2+). Methods (Adam lr
0.005 for both, the authors' value; batch mean as the authors' ``nn_loss.mean``):

- ``adam``: backprop of the frequency loss through the 8-step differentiable simulator (Eq. 2;
  the authors' ``'GD'`` method);
- ``pg-reverse-sim``: physical gradients from the authors' reverse-simulation estimator
  (:class:`~physgrad.problems.fluid.ReverseSimEstimator`, their ``estimate_v0``; default
  method ``'PG'`` of their script).

Metrics: ``v0_err`` (the headline: the authors' velocity error on the state the simulator
starts from, projected and staggered, vector length per cell, mean over cells; length / time;
:func:`~physgrad.problems.fluid.simulated_v0_error`), ``v0_l1`` (the raw centred output's error,
mean over cells of ``|v0 - v0*|`` summed over both components), ``objective`` (frequency loss),
plus ``x_l1``, ``y_l1``, ``y_l2``. The metrics reuse the training step's forward simulation.

Scales: ``smoke`` (2 iterations, batch 2: seconds), ``cpu`` (:data:`CPU_ITERATIONS` iterations
at the paper's batch 64, ~20 min per method on one thread), ``paper`` (20k iterations, batch
64). The cpu scale keeps the paper's batch size because a small batch changes the outcome: at
batch 8 Adam's v0 error grows from the start instead of falling and flattening (BENCHMARKS.md,
"fluid at the paper's batch size"). The grid is
64 x 64 at every scale (the problem is built without the scale; the U-Net's 5 levels need a
multiple of 16).

Figures (Fig. 13, Fig. 6b) and the measured Table 1: :mod:`physgrad.experiments.fluid_figures`.
"""

from __future__ import annotations

import torch

from physgrad.experiments.base import Experiment, MethodSpec, Result, Scale, register
from physgrad.experiments.runner import Comparison
from physgrad.nets import UNet, adapt
from physgrad.problems.base import Batch
from physgrad.problems.fluid import FluidProblem
from physgrad.training.methods import Physical, Unsupervised
from physgrad.training.optimizers import OptimizerSpec

ADAM_LR = 0.005
CPU_ITERATIONS = 600
CPU_BATCH = 64


def fluid_network(levels: int = 5, filters: int = 16) -> UNet:
    """PhiFlow ``u_net(2, 2, levels=5, filters=16)``, circular padding:
    ``(B, 2, 64, 64) -> (B, 2, 64, 64)``, 49,570 parameters; fed a batch it sees
    :func:`marker_pair` and returns ``v0`` (its shape checked)."""
    network = UNet(2, 2, levels=levels, filters=filters, padding_mode="circular")
    return adapt(network, inputs=marker_pair, output=_checked_v0)


def marker_pair(batch: Batch) -> torch.Tensor:
    """The fluid network's input ``stack(m0, mT)``: ``(B, 2, ny, nx)`` float32."""
    if batch.condition is None:
        raise ValueError("fluid batches need condition = m0 (B, ny, nx)")
    return torch.stack([batch.condition, batch.y_target], dim=1).float()


def _checked_v0(raw: torch.Tensor, batch: Batch) -> torch.Tensor:
    expected = (len(batch), 2, *batch.y_target.shape[1:])
    if tuple(raw.shape) != expected:
        raise ValueError(f"network output must have shape {expected}, got {tuple(raw.shape)}")
    return raw


_adam = OptimizerSpec("adam", ADAM_LR)


def _figures(comparison: Comparison) -> Result:
    from physgrad.experiments.fluid_figures import fluid_figures

    return fluid_figures(comparison)


FLUID = register(
    Experiment(
        name="fluid",
        description="64x64 periodic Navier-Stokes, v0 from (m0, mT), U-Net; Adam vs Adam + PG",
        paper="Sec. 3.4, B.5, Fig. 6, 13",
        scales={
            "smoke": Scale(iterations=2, batch_size=2),
            "cpu": Scale(iterations=CPU_ITERATIONS, batch_size=CPU_BATCH),
            "long": Scale(iterations=2_000, batch_size=64),
            "paper": Scale(iterations=20_000, batch_size=64),
        },
        problem=FluidProblem,
        network=fluid_network,
        methods={
            "adam": MethodSpec("Adam", Unsupervised, _adam),
            "pg-reverse-sim": MethodSpec(
                "Adam + PG (reverse sim.)",
                lambda: Physical("reverse-sim", name="pg-reverse-sim"),
                _adam,
            ),
        },
        default_methods=("adam", "pg-reverse-sim"),
        baseline="adam",
        metrics=("v0_err", "v0_l1", "objective"),
        smoothing=64,
        heldout=64,  # 256 would cost ~4 batch-64 simulations per evaluation on a CPU
        ratio_at=(200,),
        figures=_figures,
    )
)
