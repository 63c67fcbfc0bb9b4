"""``exp``: invert y = exp(x) (published paper, SIP NeurIPS 2022; authors' exp/train_exp.py).

MLP 1-16-64-16-1 with sigmoid activations, batch 100, losses summed over the batch (as the
authors' ``loss.sum.backward()``). Methods, as the authors' runs:

- ``gd``: backprop through ``exp`` ("Adjoint"), SGD lr 1e-2;
- ``adam``: the same loss with Adam lr 1e-3;
- ``rescaled``: the authors' "Sign" update, target ``x + sign(x* - x)`` (uses the ground
  truth: the ideal rescaled direction), SGD lr 1e-2;
- ``newton``: target ``x + min(|g/H|, 0.1) sign(-g)`` ("Newton Clipped"), SGD lr 1e-2;
- ``supervised``: ``1/2 (x - x*)²`` ("Ground Truth"), SGD lr 1e-2 (not in the default set).

After :func:`~physgrad.experiments.compare`, :func:`predictions` computes the paper's
"predicted x vs x*" figure from the comparison folder (the figure hook returns it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from physgrad.experiments.base import Experiment, MethodSpec, Result, Scale, register
from physgrad.experiments.runner import trained_network
from physgrad.nets import MLP
from physgrad.problems.exp import X_RANGE, ExpProblem
from physgrad.training.methods import Physical, Supervised, Unsupervised
from physgrad.training.optimizers import OptimizerSpec

_sgd = OptimizerSpec("sgd", 1e-2)
_adam = OptimizerSpec("adam", 1e-3)


def exp_network(
    hidden: tuple[int, ...] = (16, 64, 16), activation: str = "sigmoid"
) -> MLP:
    """The authors' ``dense_net(1, 1, [16, 64, 16], activation='Sigmoid')``.

    Shapes: ``(B, 1) -> (B, 1)`` (input ``y*``, output ``x``).
    """
    return MLP(1, 1, hidden=hidden, activation=activation)


@dataclass
class ExpPredictions:
    """Figure data of the paper's exp figure (``predictions.png``, drawn by
    :func:`physgrad.report.scale_invariance.plot_exp_predictions`): ``x*`` ``(N,)`` and per
    method label its predicted ``x`` ``(N,)`` (float64)."""

    x_star: torch.Tensor
    predictions: dict[str, torch.Tensor]


def predictions(
    comparison_dir: Path | str,
    methods: Iterable[str] | None = None,
    points: int = 1000,
    *,
    experiment: Experiment | None = None,
) -> ExpPredictions:
    """Predicted ``x`` of each trained method on ``x* = linspace(-12, 0, points)``: the
    paper's exp figure as data.

    Loads ``comparison_dir/<method>/checkpoint.pt`` (written by ``compare``/``run``) for every
    method in ``methods`` (default: every method folder with a checkpoint, in the
    experiment's order). ``experiment``: the (configured) ``exp`` experiment whose network
    the checkpoints hold (default: the registered one).
    """
    experiment = experiment or EXP
    root = Path(comparison_dir)
    names = list(methods) if methods is not None else [
        m for m in EXP.methods if (root / m / "checkpoint.pt").is_file()
    ]
    if not names:
        raise ValueError(f"no trained exp methods (<method>/checkpoint.pt) under {str(root)!r}")
    x_star = torch.linspace(*X_RANGE, points, dtype=torch.float64)
    y = torch.exp(x_star).unsqueeze(-1).float()
    out = {}
    for name in names:
        experiment.check_method(name)
        net = trained_network(experiment, root / name / "checkpoint.pt")
        with torch.no_grad():
            out[experiment.methods[name].label] = net(y).squeeze(-1).double()
    return ExpPredictions(x_star, out)


EXP = register(
    Experiment(
        name="exp",
        description="y = exp(x), x* in (-12, 0]: MLP 1-16-64-16-1 (sigmoid), batch 100, loss sum",
        paper="SIP (NeurIPS 2022) exp figure: predicted x vs x*",
        scales={
            "smoke": Scale(iterations=100, batch_size=100),
            "cpu": Scale(iterations=10_000, batch_size=100),
            "paper": Scale(iterations=100_001, batch_size=100),
        },
        problem=ExpProblem,
        network=exp_network,
        methods={
            "gd": MethodSpec("SGD", lambda: Unsupervised(reduction="sum"), _sgd),
            "adam": MethodSpec("Adam", lambda: Unsupervised(reduction="sum"), _adam),
            "rescaled": MethodSpec(
                "Rescaled (sign, uses x*)",
                lambda: Physical("sign", reduction="sum", name="rescaled"),
                _sgd,
            ),
            "newton": MethodSpec(
                "SGD + PG (Newton, clip 0.1)",
                lambda: Physical("newton", reduction="sum", name="pg-newton"),
                _sgd,
            ),
            "supervised": MethodSpec("SGD (supervised)", lambda: Supervised(reduction="sum"), _sgd),
        },
        default_methods=("gd", "adam", "rescaled", "newton"),
        baseline="gd",
        metrics=("x_l1", "y_l1"),
        smoothing=64,
        figures=lambda comparison: Result(figures={"predictions.png": predictions(
            comparison.out, experiment=comparison.experiment)}),
    )
)
