"""Your own physics without subclassing: problems from a function, from a dataset, from a spec.

- :class:`FunctionProblem` wraps a batched ``physics(x) -> y`` and a ``sampler`` that draws
  fresh problems (with or without ground truth).
- :class:`ObservationsProblem` trains from a fixed set of observed ``y*`` (a tensor, a ``.pt``
  or a ``.npy`` file), drawing random mini-batches; no ground truth needed.
- :func:`load_problem` imports ``"package.module:function"`` (or ``"path/file.py:function"``)
  and returns the :class:`~physgrad.problems.Problem` that factory builds.
- :func:`physgrad.experiments.compare_methods` trains several methods on such a problem.

See ``docs/own-physics.md`` for a guide.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physgrad._validation import check_callable, check_finite, check_positive_int, short_text
from physgrad.core import InverseSolver, Objective, Physics, squared_error
from physgrad.problems.base import Batch, Problem

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor | None, torch.Tensor]]
"""``sampler(batch_size, generator) -> (x_true (B, *x_shape) or None, y_target (B, *y_shape))``."""

XError = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``x_error(x, x_true) -> (B, *x_shape)``: the per-component error of a prediction, e.g. a
wrapped angle difference ``torch.remainder(x - x_true + pi, 2 * pi) - pi``."""

MAX_NAMED_COMPONENTS = 16
"""Up to this many unknowns per sample each get their own ``x_err_<name>`` metric by default."""

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_solvers(solvers: dict[str, InverseSolver] | None) -> dict[str, InverseSolver]:
    if solvers is None:
        return {}
    if not isinstance(solvers, dict):
        raise TypeError(f"solvers must be a dict name -> solver, got {type(solvers).__name__}")
    for key, solver in solvers.items():
        if not isinstance(key, str) or not callable(solver):
            raise TypeError(f"solvers[{key!r}] must be a callable (x0, y_target, physics) -> x")
    return dict(solvers)


def _check_names(names: Sequence[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"x_names must be a sequence of non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"x_names must be distinct, got {list(names)}")
    return tuple(names)


class FunctionProblem(Problem):
    """A :class:`~physgrad.problems.Problem` from a physics function and a data sampler.

    Args:
        physics: batched, differentiable ``x (B, *x_shape) -> y (B, *y_shape)``; it is called
            with ``x`` in ``dtype``.
        sampler: ``sampler(batch_size, generator) -> (x_true, y_target)``; it must draw all
            randomness from ``generator`` (so runs are reproducible and resumable).
            ``x_true`` is the ground truth ``(B, *x_shape)`` or ``None`` (then only y-space
            metrics are logged and supervised training is unavailable).
        objective: per-sample ``(y, y_target) -> (B,)``; default ``1/2 ||y - y*||^2``.
        solvers: domain inverse solvers by name, e.g. ``{"inverse": Analytic(fn)}``.
        name: label of the problem (run metadata, messages).
        dtype: ``torch.float32`` or ``torch.float64``: the dtype of the observations and
            therefore of the physics and the solvers (the network stays float32).
        x_error: ``(x, x_true) -> (B, *x_shape)`` error per component (default ``x - x_true``),
            e.g. a wrapped difference for angles; ``x_l1`` and ``x_err_<name>`` use it.
        x_names: names of the flattened components of x for the per-component metrics
            ``x_err_<name>`` (default ``0, 1, …`` for up to 16 components, none beyond).

    Example::

        def sampler(batch_size, gen):
            x = torch.rand(batch_size, 1, generator=gen)     # ground truth (B, 1)
            return x, x**3                                    # (x_true, y_target)

        problem = FunctionProblem(lambda x: x**3, sampler, name="cube")
    """

    def __init__(
        self,
        physics: Physics,
        sampler: Sampler,
        *,
        objective: Objective | None = None,
        solvers: dict[str, InverseSolver] | None = None,
        name: str = "custom",
        dtype: torch.dtype = torch.float32,
        x_error: XError | None = None,
        x_names: Sequence[str] | None = None,
    ):
        check_callable("physics", physics)
        if objective is not None:
            check_callable("objective", objective)
        if x_error is not None:
            check_callable("x_error", x_error)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self._physics = physics
        self._objective = objective or squared_error
        self._solvers = _check_solvers(solvers)
        self._x_error = x_error
        self.x_names = _check_names(x_names)
        self.name = name
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        check_callable("sampler", sampler)
        self._sampler = sampler

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The base metrics, with ``x_l1`` from ``x_error`` and one ``x_err_<name>`` per unknown.

        Args:
            x: prediction ``(B, *x_shape)``.
            batch: the mini-batch it was predicted for.

        Returns:
            ``{name: (B,)}``: ``objective``, ``y_l1``, ``y_l2``; with ground truth also
            ``x_l1 = Σ|x_error(x, x*)|`` and, for ``x_names`` (default ``0, 1, …`` when a
            sample has at most :data:`MAX_NAMED_COMPONENTS` unknowns), ``x_err_<name>`` =
            ``|x_error|`` of that flattened component.
        """
        out = super().metrics(x, batch)
        if batch.x_true is None:
            return out
        with torch.no_grad():
            x = x.to(batch.x_true.dtype)
            if self._x_error is None:
                err = x - batch.x_true
            else:
                err = self._x_error(x, batch.x_true)
                if not isinstance(err, torch.Tensor) or err.shape != x.shape:
                    got = tuple(err.shape) if isinstance(err, torch.Tensor) else type(err).__name__
                    raise ValueError(
                        f"x_error must return a tensor of x's shape {tuple(x.shape)}, got {got}"
                    )
            flat = err.abs().reshape(err.shape[0], -1)
            out["x_l1"] = flat.sum(dim=1)
            names = self.x_names
            if names is None and flat.shape[1] <= MAX_NAMED_COMPONENTS:
                names = tuple(str(i) for i in range(flat.shape[1]))
            if names is not None:
                if len(names) != flat.shape[1]:
                    raise ValueError(
                        f"x_names has {len(names)} names but x has {flat.shape[1]} components"
                    )
                out.update({f"x_err_{n}": flat[:, i] for i, n in enumerate(names)})
        return out

    def physics(self, batch: Batch) -> Physics:
        """The user's physics ``x (B, *x_shape) -> y (B, *y_shape)``, the same for every batch."""
        return self._physics

    def objective(self, y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        """The user's per-sample objective ``(B,)`` (default ``1/2 ||y - y*||^2``)."""
        return self._objective(y, y_target)

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """The domain solvers passed as ``solvers=`` (usable as ``Physical("name")``)."""
        return dict(self._solvers)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Call the sampler and check what it returns; tensors are cast to ``dtype``.

        Args:
            batch_size: ``B``.
            generator: passed to the sampler, its only source of randomness.

        Returns:
            A :class:`~physgrad.problems.Batch` with ``y_target`` ``(B, *y_shape)`` and
            ``x_true`` ``(B, *x_shape)`` or ``None``.
        """
        check_positive_int("batch_size", batch_size)  # before the user's sampler sees it
        out = self._sampler(batch_size, generator)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError(
                f"sampler must return a pair (x_true or None, y_target), got {type(out).__name__}"
            )
        x_true, y_target = out
        y_target = self._as_batch("y_target", y_target, batch_size)
        if x_true is not None:
            x_true = self._as_batch("x_true", x_true, batch_size)
        return Batch(y_target, x_true)

    def _as_batch(self, name: str, value: object, batch_size: int) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"sampler's {name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() < 1 or value.shape[0] != batch_size:
            raise ValueError(
                f"sampler's {name} has shape {tuple(value.shape)}; expected {batch_size} samples "
                "along the first dimension"
            )
        return check_finite(f"sampler's {name}", value.detach().to(self.dtype))


class ObservationsProblem(FunctionProblem):
    """Train from a fixed dataset of observations ``y*`` (no simulator-drawn data needed).

    Its sampler draws ``batch_size`` random rows (with replacement) using the trainer's
    generator, so runs are reproducible and resume exactly.

    Args:
        physics: batched, differentiable ``x (B, *x_shape) -> y (B, *y_shape)``.
        observations: ``(N, *y_shape)`` with ``N >= 1`` samples and at least one feature
            dimension (a single scalar per sample is ``(N, 1)``): a tensor, or the path of a
            ``.pt`` file (loaded with ``torch.load(weights_only=True)``, holding a tensor or a
            dict with ``"y"`` and optionally ``"x_true"``) or of a ``.npy`` file.
        x_true: optional ground truth ``(N, *x_shape)`` for x-space metrics (``x_l1``).
            Without it only y-space metrics (``objective``, ``y_l1``, ``y_l2``) are logged.
        dtype: dtype of the physics; default: that of the data (float64 data runs the physics
            in float64; other float types run it in float32).
        objective: as :class:`FunctionProblem`.
        solvers: as :class:`FunctionProblem`.
        name: as :class:`FunctionProblem`.
        x_error: as :class:`FunctionProblem`.
        x_names: as :class:`FunctionProblem`.
    """

    def __init__(
        self,
        physics: Physics,
        observations: torch.Tensor | np.ndarray | str | os.PathLike[str],
        *,
        x_true: torch.Tensor | np.ndarray | None = None,
        objective: Objective | None = None,
        solvers: dict[str, InverseSolver] | None = None,
        name: str = "observations",
        dtype: torch.dtype | None = None,
        x_error: XError | None = None,
        x_names: Sequence[str] | None = None,
    ):
        source = "observations"
        if isinstance(observations, str | os.PathLike):
            source = f"observations file {str(observations)!r}"
            observations, stored_x = load_observations(observations)
            x_true = stored_x if x_true is None else x_true
        y = _check_data(source, observations)
        if dtype is None:
            dtype = torch.float64 if y.dtype == torch.float64 else torch.float32
        super().__init__(
            physics, self._rows, objective=objective, solvers=solvers, name=name, dtype=dtype,
            x_error=x_error, x_names=x_names,
        )
        self.observations = y.to(self.dtype)
        self.x_true: torch.Tensor | None = None
        if x_true is not None:
            xt = _check_data("x_true", x_true, min_dim=1)
            if xt.shape[0] != y.shape[0]:
                raise ValueError(
                    f"x_true has {xt.shape[0]} samples but the observations have {y.shape[0]}"
                )
            self.x_true = xt.to(self.dtype)

    def __len__(self) -> int:
        return self.observations.shape[0]

    def _rows(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The sampler: ``batch_size`` random rows (uniform, with replacement) picked with
        ``generator``, as ``(x_true (B, *x_shape) or None, y_target (B, *y_shape))``."""
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        return (None if self.x_true is None else self.x_true[idx]), self.observations[idx]


def load_observations(
    path: str | os.PathLike[str],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read observations (and optional ground truth) from a ``.pt`` or ``.npy`` file.

    ``.pt``: a tensor, or a dict with a tensor under ``"y"`` (and optionally ``"x_true"``),
    loaded with ``torch.load(weights_only=True)`` (no arbitrary code runs). ``.npy``: an array
    (``numpy.load(allow_pickle=False)``).

    Returns:
        ``(y (N, *y_shape), x_true (N, *x_shape) or None)``, not yet validated.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"observations file {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"observations file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".pt", ".pth", ".npy"):
        raise ValueError(f"observations file {str(path)!r} must end in .pt, .pth or .npy")
    try:
        if suffix == ".npy":
            payload: Any = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader error becomes one clear line
        raise ValueError(f"cannot read observations file {str(path)!r}: {short_text(exc)}") \
            from None
    x_true = None
    if isinstance(payload, dict):
        if "y" not in payload:
            keys = ", ".join(map(repr, payload)) or "none"
            raise ValueError(
                f"observations file {str(path)!r} holds a dict without a 'y' entry (keys: {keys})"
            )
        payload, x_true = payload["y"], payload.get("x_true")
    if not isinstance(payload, torch.Tensor):
        raise TypeError(
            f"observations file {str(path)!r} must hold a tensor (or a dict with 'y'), "
            f"got {type(payload).__name__}"
        )
    return payload, x_true


def _check_data(name: str, value: object, min_dim: int = 2) -> torch.Tensor:
    """A finite floating tensor ``(N, ...)`` with ``N >= 1`` and at least ``min_dim`` dims."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must hold real floating-point values, got dtype {value.dtype}")
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have shape (N, *y_shape) with at least {min_dim} dimensions, got "
            f"{tuple(value.shape)} (one value per sample: reshape to (N, 1))"
        )
    if value.shape[0] == 0 or value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    check_finite(name, value)
    return value.detach()


_SPEC = re.compile(r"^(?P<module>[^:]+):(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")


def load_attribute(spec: str, what: str = "problem") -> Any:
    """The object named by ``"package.module:name"`` or ``"path/to/file.py:name"``."""
    if not isinstance(spec, str):
        raise TypeError(f"{what} spec must be a string, got {type(spec).__name__}")
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(
            f"{what} spec {spec!r} must look like 'package.module:function' or "
            "'path/to/file.py:function'"
        )
    module_name, attr = match["module"], match["attr"]
    module = _import(module_name, spec)
    if not hasattr(module, attr):
        msg = f"module {module_name!r} has no attribute {attr!r} ({what} spec {spec!r})"
        raise ValueError(msg)
    return getattr(module, attr)


def load_problem(spec: str) -> Problem:
    """Build a problem from ``"package.module:function"`` or ``"path/to/file.py:function"``.

    ``function`` is called without arguments and must return a
    :class:`~physgrad.problems.Problem` (it may also be a Problem instance itself).
    A dotted module is imported normally (its folder must be importable, e.g. on
    ``PYTHONPATH``); a ``.py`` path is loaded from that file.
    """
    factory = load_attribute(spec, what="problem")
    if not (isinstance(factory, Problem) or callable(factory)):
        raise TypeError(f"{spec!r} is a {type(factory).__name__}, not a callable or Problem")
    problem = factory if isinstance(factory, Problem) else factory()
    if not isinstance(problem, Problem):
        raise TypeError(
            f"{spec!r} returned {type(problem).__name__}, expected a physgrad Problem "
            "(e.g. FunctionProblem or ObservationsProblem)"
        )
    return problem


def _import(module_name: str, spec: str) -> Any:
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"problem file {module_name!r} does not exist (problem spec {spec!r})")
        name = f"_physgrad_user_{path.stem}"
        file_spec = importlib.util.spec_from_file_location(name, path)
        if file_spec is None or file_spec.loader is None:
            raise ValueError(f"cannot load {module_name!r} as a Python file")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up here
        try:
            file_spec.loader.exec_module(module)
        except Exception:
            sys.modules.pop(name, None)
            raise
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"cannot import module {module_name!r} (problem spec {spec!r}): {exc}; is its folder "
            "on PYTHONPATH? A file path 'path/to/file.py:function' also works"
        ) from None
