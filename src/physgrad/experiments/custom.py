"""A user's own problem as an experiment: ``physgrad run|compare --problem module:function``.

Nothing is registered here: :func:`custom_experiment` builds an :class:`Experiment` on demand
from a problem factory (see :func:`physgrad.problems.load_problem`), an optional network
factory, and the generic methods below plus one ``pg-<name>`` method per domain solver the
problem offers (and ``supervised`` when the sampler returns ground truth). ``compare`` trains
all of them unless ``--methods`` picks some.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from physgrad.experiments.base import Experiment, MethodSpec, Scale
from physgrad.nets import MLP
from physgrad.problems.base import Problem
from physgrad.problems.custom import load_attribute, load_problem
from physgrad.solvers import LBFGS, GaussNewton, Newton
from physgrad.training.hig import HalfInverse
from physgrad.training.methods import Physical, Supervised, Unsupervised
from physgrad.training.optimizers import OptimizerSpec

LR = 1e-3


_adam = OptimizerSpec("adam", LR)


GENERIC_METHODS = {
    "adam": MethodSpec("Adam", Unsupervised, _adam),
    "pg-newton": MethodSpec(
        "Adam + PG (Newton)", lambda: Physical(Newton(), name="pg-newton"), _adam
    ),
    "pg-gauss-newton": MethodSpec(
        "Adam + PG (Gauss-Newton)", lambda: Physical(GaussNewton(), name="pg-gauss-newton"), _adam
    ),
    "pg-lbfgs": MethodSpec(
        "Adam + PG (L-BFGS)", lambda: Physical(LBFGS(), name="pg-lbfgs"), _adam
    ),
    "hig": MethodSpec("HIG (SGD lr 1)", HalfInverse, HalfInverse.optimizer),
}
"""The methods ``--problem`` offers for every problem. The solvers and HIG are built with
their Python defaults (``Newton()``, ``GaussNewton()``, ``LBFGS()``, ``HalfInverse()`` with
its SGD): one source of truth for the settings, which docs/own-physics.md lists."""

HIG_DEFAULT_MAX_ENTRIES = 10_000_000
"""``hig`` joins the default methods only when its Jacobian at the cpu scale's batch size
(``batch · y-size × parameters``) has at most this many entries (~40 MB in float32; its SVD
then takes about a second per iteration on one core). It is always available by name."""


def default_network(problem: Problem) -> nn.Module:
    """An MLP (64, 64) from the flattened network input to the flattened x, reshaped back.

    The x shape is read from one sampled batch's ``x_true``; problems without ground truth
    need ``--network``.
    """
    batch = problem.sample(2, torch.Generator().manual_seed(0))
    if batch.x_true is None:
        raise ValueError(
            f"problem {problem.name!r} has no x_true to size a default network; "
            "pass --network module:function"
        )
    n_in = batch.y_target[0].numel()
    x_shape = tuple(batch.x_true.shape[1:])
    return nn.Sequential(
        nn.Flatten(), MLP(n_in, math.prod(x_shape), hidden=(64, 64)), nn.Unflatten(1, x_shape)
    )


def custom_experiment(problem_spec: str, network_spec: str | None = None) -> Experiment:
    """An experiment around the user's problem (and network) factory."""
    problem = load_problem(problem_spec)
    if network_spec is not None:
        factory = load_attribute(network_spec, what="network")
        if not callable(factory):
            raise TypeError(f"network spec {network_spec!r} is not callable")

        def network() -> nn.Module:
            try:
                net = factory()
            except TypeError as exc:
                raise TypeError(
                    f"network factory {network_spec!r} must be callable without arguments ({exc})"
                ) from None
            if not isinstance(net, nn.Module):
                raise TypeError(
                    f"{network_spec!r} returned {type(net).__name__}, not a torch.nn.Module"
                )
            return net
        network()  # fail early on a bad factory, before any file is written
    else:
        network = functools.partial(default_network, problem)
        network()  # fail early (no x_true) rather than at the first method

    sample = problem.sample(2, torch.Generator().manual_seed(0))
    methods = dict(GENERIC_METHODS)
    for name in problem.solvers(sample):
        methods[f"pg-{name}"] = MethodSpec(
            f"Adam + PG ({name})", lambda name=name: Physical(name, name=f"pg-{name}"), _adam
        )
    if sample.x_true is not None:  # labels exist: the supervised reference is free
        methods["supervised"] = MethodSpec("Adam (supervised, x*)", Supervised, _adam)
    scales = {
        "smoke": Scale(iterations=20, batch_size=16),
        "cpu": Scale(iterations=1000, batch_size=64),
        "paper": Scale(iterations=10_000, batch_size=128),
    }
    y_size = sample.y_target[0].numel()
    n_params = sum(p.numel() for p in network().parameters() if p.requires_grad)
    small = scales["cpu"].batch_size * y_size * n_params <= HIG_DEFAULT_MAX_ENTRIES
    defaults = tuple(m for m in methods if m != "hig" or small)
    metrics = ("x_l1", "y_l2") if sample.x_true is not None else ("y_l2", "y_l1")
    return Experiment(
        name=problem.name,
        description=f"user problem {problem_spec}",
        paper="user-defined",
        scales=scales,
        problem=lambda: problem,
        network=network,
        methods=methods,
        default_methods=defaults,
        baseline="adam",
        metrics=metrics,
        smoothing=32,
    )
