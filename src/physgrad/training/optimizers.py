"""Optimizers as data: a torch optimizer's name, learning rate and keyword arguments.

An :class:`OptimizerSpec` is validated when it is made, builds the optimizer with the right
learning rate (it is the ``params -> torch.optim.Optimizer`` factory the
:class:`~physgrad.training.Trainer` takes), is changed by a config with
:meth:`OptimizerSpec.override` and is recorded in checkpoints, ``summary.json`` and
``config.yaml`` as a plain mapping (:meth:`OptimizerSpec.record`)::

    OptimizerSpec("adam", lr=2e-3)
    OptimizerSpec("sgd", lr=1e-9, kwargs={"momentum": 0.9})
    OptimizerSpec("adam", lr=2e-3, tenfold_steps=5000)  # lr 0.1x every 5000 steps
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from physgrad._validation import check_choice, short, short_text

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    name.lower(): cls
    for name, cls in sorted(vars(torch.optim).items())
    if isinstance(cls, type)
    and issubclass(cls, torch.optim.Optimizer)
    and name not in ("Optimizer", "LBFGS", "SparseAdam", "Muon")
}
"""Optimizer names: every ``torch.optim`` optimizer by its lower-case class name (``adam``,
``sgd``, ``rmsprop``, ``adadelta``, ``adagrad``, ``adamw``, ...), except L-BFGS (it needs a
closure), SparseAdam (sparse gradients only) and Muon (2-D weights only)."""

FIELDS = ("name", "lr", "kwargs", "tenfold_steps")
"""The keys of :meth:`OptimizerSpec.record` and of an :meth:`OptimizerSpec.override`."""


@dataclass(frozen=True)
class OptimizerSpec:
    """One method's optimizer: ``OPTIMIZERS[name](params, lr=lr, **kwargs)``.

    Raises a one-line ``ValueError`` naming the value for an unknown ``name``, an ``lr`` that
    is not a finite number > 0, a keyword the optimizer does not take or a value it refuses
    (it is built once on a probe parameter), and a ``tenfold_steps`` < 1.
    """

    name: str
    """Key of :data:`OPTIMIZERS`, e.g. ``"adam"``."""
    lr: float
    """Learning rate (the first step's, with ``tenfold_steps``)."""
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Other keyword arguments of the optimizer, e.g. ``{"momentum": 0.9}``; lists become
    tuples (``betas``), so a spec read from a config builds what the code's spec builds."""
    tenfold_steps: int | None = None
    """If set, the learning rate falls tenfold every ``tenfold_steps`` steps:
    ``lr · 0.1^(t / tenfold_steps)`` at step ``t`` (0-based); the step count is kept in the
    optimizer's parameter groups, so a resumed run continues the schedule."""

    def __post_init__(self) -> None:
        check_choice("optimizer", self.name, tuple(OPTIMIZERS))
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float):
            raise ValueError(f"optimizer lr must be a number, got {short(self.lr)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"optimizer lr must be a finite number > 0, got {self.lr}")
        object.__setattr__(self, "lr", float(self.lr))
        if not isinstance(self.kwargs, Mapping):
            raise ValueError(f"optimizer kwargs must be a mapping, got {short(self.kwargs)}")
        known = _keywords(self.name)
        for key in self.kwargs:
            if key not in known:
                raise ValueError(
                    f"optimizer {self.name!r} takes no keyword {short(key)}; "
                    f"it takes: {', '.join(known)}"
                )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in self.kwargs.items()}
        object.__setattr__(self, "kwargs", kwargs)
        steps = self.tenfold_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or steps < 1):
            raise ValueError(f"optimizer tenfold_steps must be an int >= 1, got {short(steps)}")
        try:  # the optimizer's own range checks (e.g. momentum < 0), now rather than mid-run
            self([nn.Parameter(torch.zeros(1))])
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ValueError(f"{self}: {short_text(exc)}") from None

    def __call__(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer over ``params`` (any shapes)."""
        cls = OPTIMIZERS[self.name]
        if self.tenfold_steps is None:
            return cls(params, lr=self.lr, **self.kwargs)
        return _decaying(cls)(params, lr=self.lr, tenfold_steps=self.tenfold_steps, **self.kwargs)

    def __str__(self) -> str:
        parts = [f"lr={self.lr:g}", *(f"{k}={v!r}" for k, v in self.kwargs.items())]
        if self.tenfold_steps is not None:
            parts.append(f"tenfold_steps={self.tenfold_steps}")
        return f"optimizer {self.name}({', '.join(parts)})"

    def record(self) -> dict[str, Any]:
        """A plain mapping (JSON/YAML/``weights_only`` checkpoint safe; tuples as lists) of
        this spec's fields: ``OptimizerSpec(**spec.record()) == spec``."""
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs.items()}
        return {"name": self.name, "lr": self.lr, "kwargs": kwargs,
                "tenfold_steps": self.tenfold_steps}

    def override(
        self, changes: Mapping[str, Any] | None, source: str = "optimizer"
    ) -> OptimizerSpec:
        """This spec with ``changes`` (keys of :data:`FIELDS`; ``None`` values keep this
        spec's) applied: ``kwargs`` are merged into this spec's, except when ``name`` changes
        to another optimizer, whose keywords start empty. ``source`` names the mapping in
        errors (e.g. ``"optimizer.methods.sgd"``)."""
        changes = _given(changes, source)
        if not changes:
            return self
        name = changes.get("name", self.name)
        base = self.kwargs if name == self.name else {}
        kwargs = changes.get("kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{source}.kwargs must be a mapping, got {short(kwargs)}")
        try:
            return replace(self, **{**changes, "kwargs": {**base, **kwargs}})
        except ValueError as exc:
            raise ValueError(f"{source}: {short_text(exc)}") from None


def configure(
    optimizer: OptimizerSpec | OptimizerFactory, section: Mapping[str, Any] | None, method: str
) -> OptimizerSpec | OptimizerFactory:
    """``method``'s optimizer with a config's ``optimizer`` section applied: the section's
    :data:`FIELDS` for every method, then its ``methods[method]`` mapping (same keys).

    A method whose optimizer is a plain factory function (not an :class:`OptimizerSpec`)
    takes only an ``lr`` override (set on every parameter group of what it builds); other
    keys raise ``ValueError``.
    """
    section = dict(section or {})
    per_method = section.pop("methods", None) or {}
    if not isinstance(per_method, Mapping):
        raise ValueError(f"optimizer.methods must be a mapping, got {short(per_method)}")
    layers = [(section, "optimizer"), (per_method.get(method), f"optimizer.methods.{method}")]
    if isinstance(optimizer, OptimizerSpec):
        for changes, source in layers:
            optimizer = optimizer.override(changes, source)
        return optimizer
    changes: dict[str, Any] = {}
    for layer, source in layers:
        changes.update(_given(layer, source))
    if set(changes) - {"lr"}:
        raise ValueError(
            f"method {method!r} builds its optimizer with a function, not an OptimizerSpec: "
            f"only its lr can be overridden, not {', '.join(sorted(set(changes) - {'lr'}))}"
        )
    if "lr" not in changes:
        return optimizer
    lr = OptimizerSpec("sgd", changes["lr"]).lr  # validated like a spec's
    return functools.partial(_at_lr, optimizer, lr)


def learning_rate(optimizer: OptimizerSpec | OptimizerFactory) -> float:
    """The (first) learning rate ``optimizer`` starts with."""
    if isinstance(optimizer, OptimizerSpec):
        return optimizer.lr
    return float(optimizer([nn.Parameter(torch.zeros(1))]).param_groups[0]["lr"])


def _at_lr(
    factory: OptimizerFactory, lr: float, params: Iterable[nn.Parameter]
) -> torch.optim.Optimizer:
    optimizer = factory(params)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return optimizer


def _given(changes: Mapping[str, Any] | None, source: str) -> dict[str, Any]:
    """The entries of ``changes`` that are set (not ``None``, not ``{}``), numbers read from
    text (YAML reads ``1e-4`` as a string); unknown keys raise ``ValueError`` naming
    ``source``."""
    _check_keys(changes or {}, source)
    given = {k: v for k, v in (changes or {}).items() if v is not None and v != {}}
    for key, kind in (("lr", float), ("tenfold_steps", int)):
        if isinstance(given.get(key), str):
            with contextlib.suppress(ValueError):
                given[key] = kind(given[key])
    return given


def _check_keys(mapping: Mapping[str, Any], source: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{source} must be a mapping, got {short(mapping)}")
    for key in mapping:
        if key not in FIELDS:
            raise ValueError(f"unknown key {source}.{key}; known: {', '.join(FIELDS)}")


@functools.cache
def _keywords(name: str) -> tuple[str, ...]:
    """Keyword arguments of ``OPTIMIZERS[name]`` other than ``params`` and ``lr``."""
    signature = inspect.signature(OPTIMIZERS[name])
    return tuple(p for p in signature.parameters if p not in ("self", "params", "lr"))


class _TenfoldDecay:
    """Mixin for a torch optimizer whose learning rate falls tenfold every ``tenfold_steps``
    steps (see :attr:`OptimizerSpec.tenfold_steps`); the schedule's state (``initial_lr``,
    ``tenfold_steps``, ``t``) lives in the parameter groups, so ``state_dict`` saves it."""

    param_groups: list[dict[str, Any]]

    def __init__(self, params: Any, lr: float, tenfold_steps: int, **kwargs: Any):
        super().__init__(params, lr=lr, **kwargs)  # type: ignore[call-arg]
        for group in self.param_groups:
            group["initial_lr"], group["tenfold_steps"], group["t"] = lr, tenfold_steps, 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            group["lr"] = group["initial_lr"] * 0.1 ** (group["t"] / group["tenfold_steps"])
            group["t"] += 1
        return super().step(closure)  # type: ignore[misc]


@functools.cache
def _decaying(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """``cls`` with the tenfold learning-rate decay, named ``Decaying<cls>``."""
    return type(f"Decaying{cls.__name__}", (_TenfoldDecay, cls), {"__doc__": _TenfoldDecay.__doc__})


# At a constant learning rate Adam on sin(a/x) keeps oscillating late in training: every
# sample's error grows together in short spikes (docs/experiments/sine.md); decaying damps them.
DecayingAdam = _decaying(torch.optim.Adam)
