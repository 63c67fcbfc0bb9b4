"""Typed run configurations: read from YAML/TOML/JSON, overridden with ``key=value``,
validated with errors that name the key, and written back so a run can be repeated.

A configuration has fixed sections (:class:`RunConfig`, :class:`TrainingConfig`,
:class:`OptimizerConfig`) and two sections typed by the chosen experiment: ``problem`` holds
keyword arguments of the experiment's problem class and ``network`` those of its network
factory. Their names, types and defaults come from those signatures, so a new experiment
gets a validated configuration without writing a schema::

    experiment: heat
    method: pg-inverse
    scale: cpu
    training: {iterations: 2000, batch_size: 16, seed: 0, checkpoint_every: 500}
    optimizer: {lr: 0.001, methods: {sgd: {lr: 0.01, kwargs: {momentum: 0.5}}}}
    problem: {shape: [64, 64], amount: 8.0, min_count: 4, max_count: 10, max_half_size: 10.0}
    network: {levels: 4, filters: 16}

On the command line: ``physgrad run heat --set problem.amount=4 --set training.iterations=500``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import copy
import dataclasses
import functools
import inspect
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from physgrad._validation import MAX_SEED, first_repeat, short, short_text
from physgrad.experiments.base import SCALES, RunOptions
from physgrad.io import write_text

__all__ = [
    "OptimizerConfig",
    "RunConfig",
    "TrainingConfig",
    "apply_overrides",
    "configurable_parameters",
    "configure_experiment",
    "load_config_file",
    "set_key",
]


@dataclass
class TrainingConfig:
    """Length, width and seed of a training run."""

    iterations: int | None = None
    """Training iterations; ``None``: the scale's."""
    batch_size: int | None = None
    """Samples per iteration; ``None``: the scale's."""
    seed: int = 0
    """Seed of the initial weights and of the data stream."""
    checkpoint_every: int = 500
    """Iterations between checkpoints (0: only at the end and on Ctrl-C/SIGTERM)."""
    compile: bool = False
    """Run the network through ``torch.compile``: minutes of compilation, then faster steps
    (break-even in BENCHMARKS.md); for long runs."""


@dataclass
class OptimizerConfig:
    """Optimizer settings: each set value replaces the method's own
    (:class:`~physgrad.training.optimizers.OptimizerSpec`) for every method of the run, then
    ``methods`` sets them per method. A run folder's ``config.yaml`` records the optimizer
    the method trained with."""

    lr: float | None = None
    """Learning rate; ``None``: each method's own."""
    name: str | None = None
    """A ``torch.optim`` optimizer by lower-case class name (``adam``, ``sgd``, ...)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Optimizer keyword arguments, merged into the method's, e.g. ``{momentum: 0.5}``."""
    tenfold_steps: int | None = None
    """Steps per tenfold decay of the learning rate; ``None``: the method's (no decay)."""
    methods: dict[str, Any] = field(default_factory=dict)
    """Per-method settings with the keys above, e.g. ``{sgd: {lr: 0.01}}``."""


@dataclass
class RunConfig:
    """Everything ``physgrad run``/``compare`` needs to repeat a run.

    Name either a registered ``experiment`` or a user's ``problem_fn`` (``module:function``,
    optionally with ``network_fn``). ``problem`` and ``network`` are keyword arguments of the
    experiment's problem class and network factory (see :func:`configurable_parameters`).
    """

    experiment: str | None = None
    problem_fn: str | None = None
    network_fn: str | None = None
    method: str | None = None
    """``run``: the method to train (default: the experiment's first)."""
    methods: list[str] | None = None
    """``compare``: the methods to compare (default: the experiment's default set)."""
    seeds: list[int] | None = None
    """``compare``: one comparison per seed (``--seeds``); ``None``: ``training.seed`` only."""
    scale: str = "cpu"
    out: str | None = None
    device: str | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    problem: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """Validate a nested mapping (unknown keys, wrong types, out-of-range values raise
        ``ValueError`` naming the dotted key and ``source``)."""
        config = _build(cls, data, "", source)
        config._check_ranges(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        """A plain nested mapping (tuples as lists) that :meth:`from_dict` reads back."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: Path | str) -> None:
        """Write the configuration as YAML atomically (``physgrad run --config <path>`` for one
        method's run, ``physgrad compare --config <path>`` for a comparison's)."""
        command = "run" if self.method else "compare"
        text = f"# repeat with: physgrad {command} --config <this file>\n"
        write_text(path, text + yaml.safe_dump(self.to_dict(), sort_keys=False))

    def run_options(self, **given: Any) -> RunOptions:
        """The :class:`~physgrad.experiments.base.RunOptions` this configuration describes
        (seeds: ``seeds``, else ``training.seed``; out: ``out``, else ``runs``); ``given``
        adds or replaces fields only the command line knows (resume, force, progress,
        trackers, threads, a resolved lr)."""
        t = self.training
        optimizer = {k: v for k, v in dataclasses.asdict(self.optimizer).items()
                     if k != "lr" and v is not None and v != {}}  # lr has its own field
        fields = dict(
            out=Path(self.out or "runs"), scale=self.scale, seeds=tuple(self.seeds or [t.seed]),
            iterations=t.iterations, batch_size=t.batch_size, device=self.device,
            lr=self.optimizer.lr, optimizer=optimizer or None,
            checkpoint_every=t.checkpoint_every, compile=t.compile,
        )
        return RunOptions(**{**fields, **given})

    def _check_ranges(self, source: str) -> None:
        t = self.training
        for key, value, low in (
            ("training.iterations", t.iterations, 1),
            ("training.batch_size", t.batch_size, 1),
            ("training.seed", t.seed, 0),
            ("training.checkpoint_every", t.checkpoint_every, 0),
        ):
            if value is not None and value < low:
                raise ValueError(f"{key} must be >= {low}, got {short(value)} ({source})")
        for key, value in [("training.seed", t.seed)] + [
            (f"seeds[{i}]", s) for i, s in enumerate(self.seeds or [])
        ]:
            if not 0 <= value <= MAX_SEED:  # torch.manual_seed takes 64-bit seeds
                raise ValueError(
                    f"{key} must be in [0, 2**64 - 1], got {short(value)} ({source})"
                )
        for key, values in (("methods", self.methods), ("seeds", self.seeds)):
            if values is not None and not values:  # [] would silently mean the default
                raise ValueError(f"{key} must name at least one {key[:-1]}, got [] ({source})")
            twice = first_repeat(values or [])
            if twice is not None:
                raise ValueError(f"{key} lists {short(twice)} twice ({source})")
        lr = self.optimizer.lr
        if lr is not None and not math.isfinite(lr):
            raise ValueError(f"optimizer.lr must be finite, got {lr} ({source})")
        if lr is not None and lr <= 0:
            raise ValueError(f"optimizer.lr must be > 0, got {lr} ({source})")
        if self.out is not None and not self.out.strip():
            raise ValueError(f"out must name a folder, got {short(self.out)} ({source})")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {short(self.scale)}")
        if self.experiment and self.problem_fn:
            raise ValueError("give either an experiment name or --problem (problem_fn), not both")


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases: a config never needs them, and a few hundred bytes
    of nested aliases (a "billion laughs" file) expand to more values than memory holds."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            raise yaml.YAMLError(
                f"YAML aliases (*{short(anchor)[1:-1]}) are not allowed in physgrad configs"
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


# Old flat keys, named in the error so old files are easy to update.
_MOVED = {
    "iters": "training.iterations",
    "batch_size": "training.batch_size",
    "seed": "training.seed",
    "checkpoint_every": "training.checkpoint_every",
    "lr": "optimizer.lr",
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file into a nested mapping."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        text = file.read_text()
        if file.suffix == ".json":
            data = json.loads(text)
        elif file.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = _load_yaml(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        reason = short_text(exc)
        raise ValueError(f"config file {str(path)!r} is not valid YAML/TOML/JSON: {reason}") \
            from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of options")
    return data


def apply_overrides(data: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested mapping (a copy is returned).

    Values are read as YAML scalars or lists (``3``, ``1e-4``, ``true``, ``[64, 64]``,
    ``null``); their type is checked later against the configuration's fields.
    """
    out = copy.deepcopy(data)
    for text in assignments:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(
                f"--set needs key=value (e.g. training.iterations=100), got {short(text)}"
            )
        try:
            value = _load_yaml(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError):  # ValueError: e.g. an int of > 4300 digits
            value = raw
        plain = isinstance(value, str | int | float | bool | list | type(None))
        if not (plain or (isinstance(value, dict) and raw.lstrip().startswith("{"))):
            value = raw  # "a: b" or a date: the text itself
        set_key(out, key, value)
    return out


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` (e.g. ``"training.iterations"``) in a nested mapping, creating
    missing sections."""
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(
                f"cannot set config key {short(key)}: {short(part)} is not a section"
            )
        node = child
    node[leaf] = value


# ---- typed sections from signatures -------------------------------------------------------


def configurable_parameters(factory: Any) -> dict[str, tuple[Any, Any]]:
    """Keyword parameters of a class or function that a config can set.

    Returns ``{name: (annotation, default)}`` for parameters with a default and a plain type
    (bool, int, float, str, their optionals, literals and sequences of them); others (dtypes,
    tensors, callables) are fixed by the experiment. A :func:`functools.partial` contributes
    its keywords as defaults.
    """
    bound: dict[str, Any] = {}
    target = factory
    while isinstance(target, functools.partial):
        bound = {**target.keywords, **bound}
        target = target.func
    function = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(function)
        signature = inspect.signature(factory)
    except (NameError, TypeError, ValueError):
        return {}
    params = {}
    for name, p in signature.parameters.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.default is p.empty:
            continue
        annotation = hints.get(name)
        if annotation is not None and _supported(annotation):
            params[name] = (annotation, bound.get(name, p.default))
    return params


def configure_experiment(experiment: Any, config: RunConfig) -> tuple[Any, dict[str, Any]]:
    """The experiment with ``config.problem``/``config.network`` applied, and those sections
    resolved to every configurable parameter's value (defaults filled in)."""
    resolved, factories, changes = {}, {}, {}
    for section in ("problem", "network"):
        factory = getattr(experiment, section, None)  # a figure-only experiment has none
        overrides = getattr(config, section)
        params = configurable_parameters(factory) if factory is not None else {}
        for key in overrides:
            if key not in params:
                known = ", ".join(params) or "none"
                raise ValueError(
                    f"unknown config key {section}.{short(key)[1:-1]} for experiment "
                    f"{experiment.name!r}; "
                    f"known: {known}"
                )
        values = {
            key: _coerce(f"{section}.{key}", overrides[key], annotation)
            if key in overrides
            else default
            for key, (annotation, default) in params.items()
        }
        resolved[section] = _plain(values)
        changed = {k: values[k] for k in overrides if values[k] != params[k][1]}
        factories[section] = functools.partial(factory, **changed) if changed else factory
        if changed:  # construct once so a bad value fails now, naming the section
            try:
                factories[section]()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{section} config {short(_plain(changed))}: {short_text(exc)}") \
                    from None
            changes[section] = _plain(changed)
    if not changes:
        return experiment, resolved
    return dataclasses.replace(experiment, **factories, overrides=changes), resolved


# ---- type checking ------------------------------------------------------------------------


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section {prefix.rstrip('.') or '<top>'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            hint = f"; it is now {_MOVED[key]}" if not prefix and key in _MOVED else ""
            known = ", ".join(prefix + k for k in fields)
            raise ValueError(
                f"unknown config key {short(name)} in {source}{hint or '; known: ' + known}"
            )
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = _build(annotation, value if value is not None else {}, name + ".", source)
        elif annotation == dict[str, Any]:
            if not isinstance(value, dict | None):
                raise _wrong(name, "a mapping", value)
            kwargs[key] = dict(value or {})
        else:
            kwargs[key] = _coerce(name, value, annotation)
    return cls(**kwargs)


def _supported(annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (bool, int, float, str):
        return True
    if origin is typing.Literal:
        return all(isinstance(a, bool | int | float | str) for a in args)
    if origin in (types.UnionType, typing.Union):
        return all(a is type(None) or _supported(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        return len(inner) >= 1 and all(_supported(a) for a in inner)
    return False


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation`` (numbers from strings such as ``"1e-4"``) or ValueError."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except ValueError:
                continue
        raise _wrong(key, _describe(annotation), value)
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"config key {short(key)} must be one of {list(args)}, got {short(value)}")
    if origin in (list, tuple, collections.abc.Sequence):
        if isinstance(value, str) and origin is list and args == (str,):
            value = [v.strip() for v in value.split(",") if v.strip()]  # "a,b" as on the CLI
        if not isinstance(value, list | tuple):
            raise _wrong(key, "a list", value)
        if origin is tuple and Ellipsis not in args and len(args) != len(value):
            raise _wrong(key, f"a list of {len(args)} entries", value)
        inner = args[0] if args else Any
        items = [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is Any:
        return value
    raise _wrong(key, _describe(annotation), value)


def _wrong(key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"config key {short(key)} must be {expected}, got {short(value)}")


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
