"""Experiments: named, versioned configurations that the CLI runs and the report turns into
figures and tables. Each experiment registers itself in :data:`REGISTRY` by name."""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physgrad._validation import check_choice
from physgrad.problems.base import Problem
from physgrad.training.methods import Method

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SCALES = ("smoke", "cpu", "long", "paper")
"""Run sizes, shortest first: ``smoke`` checks the plumbing in seconds, ``cpu`` is a short
comparison on a laptop CPU, ``long`` the CPU runs toward the paper's training lengths that
continue across days from committed checkpoints (docs/results/long), ``paper`` the paper's
own batch and length (a GPU). Experiments define the scales that make sense for them."""


@dataclass(frozen=True)
class MethodSpec:
    """One curve of a comparison: a gradient method plus the optimizer that applies it."""

    label: str
    """Legend text, e.g. ``"Adam + PG (analytic)"``."""
    method: Callable[[], Method]
    optimizer: OptimizerFactory


@dataclass(frozen=True)
class Scale:
    """How long and how wide a run is at one scale (``smoke``, ``cpu``, ``paper``)."""

    iterations: int
    batch_size: int


@dataclass(frozen=True)
class Experiment:
    """A registered experiment.

    Training experiments set ``problem``, ``network`` and ``methods``; experiments that only
    make a figure (e.g. ``toy``) set ``run`` instead: ``run(out_dir, scale, progress) -> dict``.
    """

    name: str
    description: str
    paper: str
    """Where in the paper it comes from (section / figure)."""
    scales: dict[str, Scale] = field(default_factory=dict)
    problem: Callable[[], Problem] | None = None
    network: Callable[[], nn.Module] | None = None
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    default_methods: tuple[str, ...] = ()
    baseline: str = ""
    """Method the tables compare against (e.g. plain Adam)."""
    metrics: tuple[str, ...] = ("x_l1",)
    """Plotted metrics; the first is the headline metric of the tables."""
    smoothing: int = 64
    """Running-average window (mini-batches) for curves and final values."""
    ratio_at: tuple[int, ...] = (100,)
    """Iterations at which the tables also compare the baseline's error with each method's."""
    log_y: bool = True
    heldout: int = 256
    """Held-out problems (drawn once from :data:`~physgrad.training.HELDOUT_SEED`) every run
    is scored on during training: every ``iterations // 50`` iterations and at the end."""
    run: Callable[..., dict[str, Any]] | None = None
    figures: Callable[[Path, str], Any] | None = None
    """Extra figures made after a comparison: ``figures(comparison_dir, scale)``. It runs
    inside :func:`configured`, so ``get_experiment(name)`` there returns the run's configured
    experiment (its problem/network parameters)."""
    version: int = 1
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Problem/network keyword arguments a config changed from the defaults
    (:func:`physgrad.config.configure_experiment`); recorded in checkpoints."""

    @property
    def trains(self) -> bool:
        """True for experiments trained with methods; False for figure-only ones (``run`` set)."""
        return self.run is None

    def method_names(self) -> list[str]:
        """The method names in registration order (the first is the default)."""
        return list(self.methods)

    def check_method(self, name: str) -> MethodSpec:
        """The :class:`MethodSpec` called ``name``; else ``ValueError`` naming the choices."""
        check_choice(f"method for experiment {self.name!r}", name, self.method_names())
        return self.methods[name]

    def scale(self, name: str) -> Scale:
        """The :class:`Scale` called ``name`` (smoke, cpu, paper); else ``ValueError``."""
        if not self.scales:
            raise ValueError(f"experiment {self.name!r} has no training scales")
        check_choice("scale", name, tuple(self.scales))
        return self.scales[name]


REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to the registry (names must be unique)."""
    if REGISTRY.get(experiment.name) is experiment:
        return experiment
    if experiment.name in REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is already registered")
    REGISTRY[experiment.name] = experiment
    return experiment


# name -> configured experiment; a tuple of pairs so the default is immutable
_CONFIGURED: contextvars.ContextVar[tuple[tuple[str, Experiment], ...]] = contextvars.ContextVar(
    "physgrad_configured_experiments", default=()
)


def get_experiment(name: str) -> Experiment:
    """Look an experiment up by name; unknown names raise ValueError listing the known ones.

    Inside :func:`configured`, the configured version of that experiment is returned.
    """
    _load_builtin()
    check_choice("experiment", name, sorted(REGISTRY))
    return dict(_CONFIGURED.get()).get(name, REGISTRY[name])


@contextmanager
def configured(experiment: Experiment) -> Iterator[Experiment]:
    """Within the block, ``get_experiment(experiment.name)`` returns ``experiment``.

    Figure hooks and report code look their experiment up by name; this makes them build the
    run's problem and network (e.g. after ``--set network.filters=32``) instead of the
    registered defaults, so trained checkpoints load and figures use the run's physics.
    """
    token = _CONFIGURED.set((*_CONFIGURED.get(), (experiment.name, experiment)))
    try:
        yield experiment
    finally:
        _CONFIGURED.reset(token)


def list_experiments() -> list[Experiment]:
    """Every registered experiment (built-ins included), sorted by name."""
    _load_builtin()
    return [REGISTRY[k] for k in sorted(REGISTRY)]


ENTRY_POINT_GROUP = "physgrad.experiments"
"""Entry-point group through which other packages add experiments (docs/own-physics.md)."""


def _load_builtin() -> None:
    """Import every module of this package once, then every module another installed package
    names in the :data:`ENTRY_POINT_GROUP` entry-point group: importing a module that calls
    :func:`register` registers its experiments.

    Lazy, so ``import physgrad`` stays light. A package adds experiments with, in its
    ``pyproject.toml``::

        [project.entry-points."physgrad.experiments"]
        mylab = "mylab.experiments"

    An entry point that fails to import raises an error naming it.
    """
    import physgrad.experiments as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:  # a user's package: say which one broke
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(
                f"experiments entry point {entry.name!r} ({entry.value}) failed to load: {first}"
            ) from exc

