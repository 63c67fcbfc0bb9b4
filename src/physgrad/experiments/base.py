"""Experiments: named configurations that the CLI runs and the report turns into
figures and tables. Each experiment registers itself in :data:`REGISTRY` by name."""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from torch import nn

from physgrad._validation import (
    check_choice,
    check_device,
    check_nonnegative_float,
    check_positive_int,
    check_seed,
)
from physgrad.problems.base import Problem
from physgrad.training.methods import Method
from physgrad.training.optimizers import OptimizerFactory, OptimizerSpec
from physgrad.training.tracking import check_trackers

if TYPE_CHECKING:
    from physgrad.experiments.runner import Comparison

_E = TypeVar("_E", "Experiment", "FigureExperiment")
SCALES = ("smoke", "cpu", "long", "paper")
"""Run sizes, shortest first: ``smoke`` checks the plumbing in seconds, ``cpu`` is a short
comparison on a laptop CPU, ``long`` the CPU runs toward the paper's training lengths that
continue across days from committed checkpoints (docs/results/long), ``paper`` the paper's
own batch and length (a GPU). Experiments define the scales that make sense for them."""


@dataclass(frozen=True)
class RunOptions:
    """How to run experiments, one value from the config/CLI down to the runner: where, how
    long, on what, and what to do with earlier runs. Checked on construction: a bad value
    raises a one-line ``ValueError`` naming it, before anything is written."""

    out: Path = Path("runs")
    scale: str = "cpu"
    seeds: tuple[int, ...] = (0,)
    """One comparison per seed (initial weights and data stream)."""
    iterations: int | None = None  # None: the scale's
    batch_size: int | None = None  # None: the scale's
    device: str | None = None
    resume: bool = False  # continue interrupted runs, keep finished ones
    force: bool = False  # start over where earlier runs exist
    progress: bool = True
    trackers: tuple[str, ...] = ()  # "tensorboard", "mlflow"
    lr: float | None = None  # every method's learning rate; None: each method's own
    # a config's optimizer section (for every method, then methods.<name>), applied before lr
    # by physgrad.training.optimizers.configure; None: each method's own optimizer
    optimizer: dict[str, Any] | None = field(default=None, hash=False)
    checkpoint_every: int = 500  # iterations between checkpoints (0: at the end, on signals)
    threads: int | None = None  # torch CPU threads; None: as set (the CLI's default_threads)
    compile: bool = False  # torch.compile the network (see Trainer)

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ValueError(f"out must name a folder, got {str(self.out)!r}")
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "trackers", tuple(self.trackers))
        check_choice("scale", self.scale, SCALES)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed, got none")
        for seed in self.seeds:
            check_seed(seed)
        if len(set(self.seeds)) < len(self.seeds):
            raise ValueError(f"seeds must differ, got {list(self.seeds)}")
        for name in ("iterations", "batch_size", "threads"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) \
                or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an integer >= 0, got "
                             f"{self.checkpoint_every!r}")
        if self.lr is not None:
            check_nonnegative_float("lr", self.lr, positive=True)
        if self.resume and self.force:
            raise ValueError("resume continues runs and force starts them over: give one")
        if self.device is not None:
            check_device(self.device)
        check_trackers(self.trackers)

    @property
    def seed(self) -> int:
        """The first seed (the one a single comparison uses)."""
        return self.seeds[0]


@dataclass(frozen=True)
class MethodSpec:
    """One curve of a comparison: a gradient method plus the optimizer that applies it."""

    label: str
    """Legend text, e.g. ``"Adam + PG (analytic)"``."""
    method: Callable[[], Method]
    optimizer: OptimizerSpec | OptimizerFactory
    """The optimizer as data (recorded with the run; a config may change it, see
    :func:`physgrad.training.optimizers.configure`), or a factory ``params -> optimizer``
    (then only its learning rate can be changed)."""


@dataclass(frozen=True)
class Scale:
    """How long and how wide a run is at one scale (``smoke``, ``cpu``, ``paper``)."""

    iterations: int
    batch_size: int


FigureData = object
"""What one figure shows, as plain values (a dataclass of tensors, arrays, histories, numbers):
each type has one renderer in :data:`physgrad.report.figures.RENDERERS`, which draws it to a
PNG. Experiments compute figure data; only the report (and the CLI through it) draws."""


@dataclass
class Result:
    """What an experiment (or a training experiment's figure hook) made, as values a report
    renders: figures (as data), its headline table and further titled markdown sections."""

    figures: dict[str, FigureData] = field(default_factory=dict)
    """PNG file name in the experiment's (comparison's) folder -> :data:`FigureData`;
    :func:`physgrad.report.figures.render` draws them there."""
    table: str = ""
    """Markdown table (figure-only experiments; a comparison's own table comes from it)."""
    sections: dict[str, str] = field(default_factory=dict)
    """Title -> markdown body, e.g. fluid's measured Table 1."""


FigureHook = Callable[["Comparison"], "Result | None"]
"""Extra figures after a comparison: ``figures(comparison)``, given the trained comparison
(its configured experiment, histories, folder with the checkpoints, scale)."""


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A registered training experiment: networks trained by several methods and compared."""

    name: str
    description: str
    paper: str
    """Where in the paper it comes from (section / figure)."""
    problem: Callable[[], Problem]
    network: Callable[[], nn.Module]
    scales: dict[str, Scale] = field(default_factory=dict)
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
    figures: FigureHook | None = None
    """Extra figures made after a comparison (:data:`FigureHook`)."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Problem/network keyword arguments a config changed from the defaults
    (:func:`physgrad.config.configure_experiment`); recorded in checkpoints."""

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


@dataclass(frozen=True, kw_only=True)
class FigureExperiment:
    """A registered experiment that only makes a figure (e.g. ``toy``): nothing is trained.

    ``make(out_dir, scale, progress)`` writes its data files into ``out_dir`` and returns the
    :class:`Result` (figure data, table) a report shows and renders into ``out_dir``.
    """

    name: str
    description: str
    paper: str
    make: Callable[[Path, str, bool], Result]


AnyExperiment = Experiment | FigureExperiment


REGISTRY: dict[str, AnyExperiment] = {}


def register(experiment: _E) -> _E:
    """Add an experiment to the registry (names must be unique)."""
    if REGISTRY.get(experiment.name) is experiment:
        return experiment
    if experiment.name in REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is already registered")
    REGISTRY[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> AnyExperiment:
    """Look an experiment up by name; unknown names raise ValueError listing the known ones."""
    _load_builtin()
    check_choice("experiment", name, sorted(REGISTRY))
    return REGISTRY[name]


def list_experiments() -> list[AnyExperiment]:
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

