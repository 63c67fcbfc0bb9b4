"""Use a PhiFlow simulation (torch backend) as a physgrad physics ``x (B, ...) -> y (B, ...)``.

:func:`phiflow_physics` maps the leading torch dimension to a phiml batch dimension and the
others to named dims, runs the function in phiml's torch backend (so gradients are plain torch
autograd, PhiFlow's implicit gradients of linear solves included) and returns a torch tensor.
Forward-mode AD fails in PhiFlow's interpolation: use reverse-mode solvers (``LBFGS``,
``GradientDescent``). PhiFlow is imported lazily. Guide: docs/own-physics.md "PhiFlow interop".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from physgrad._validation import check_callable
from physgrad.core import Physics

INSTALL_HINT = "PhiFlow interop needs phiflow: pip install physgrad[phiflow]"

_PRECISION = {torch.float16: 16, torch.float32: 32, torch.float64: 64}


def require_phiflow() -> Any:
    """Import PhiFlow's torch backend and return ``phiml.math``.

    Raises:
        ImportError: with an install hint when phiflow (or phiml) is not installed.
    """
    try:
        import phi.torch  # noqa: F401  (registers the torch backend with phiml)
        from phiml import math
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from err
    return math


def torch_backend() -> Any:
    """phiml's torch backend, usable as a context (``with torch_backend(): ...``).

    Inside it, tensors that PhiFlow creates itself (constants, initial guesses of linear
    solves) are torch tensors too. Under NumPy (e.g. after ``from phi.flow import *``),
    differentiating ``fluid.make_incompressible`` fails in phiml 1.16 (a NumPy initial guess
    reaches torch's ``save_for_backward``).
    """
    require_phiflow()
    from phiml.backend.torch import TORCH

    return TORCH


def _torch_by_default() -> None:
    """Make torch phiml's global default backend, as ``from phi.torch.flow import *`` does.

    Backpropagation runs phiml's gradient code (e.g. the adjoint solve of a linear system)
    later, outside any ``with`` context, so the default backend must be torch then too.
    """
    from phiml.backend import set_global_default_backend

    set_global_default_backend(torch_backend())


def _parse_dims(name: str, spec: Any, math: Any) -> Any:
    """A phiml ``Shape`` from a spec string (``"y:s,x:s"``) or an existing ``Shape``."""
    if isinstance(spec, str):
        from phiml.math._shape import parse_shape_spec

        try:
            shape = parse_shape_spec(spec)
        except ValueError as err:
            raise ValueError(f"{name}={spec!r} is not a phiml shape spec: {err}") from err
    elif hasattr(spec, "names") and hasattr(spec, "rank"):
        shape = spec
    else:
        raise TypeError(f"{name} must be a phiml shape spec string or Shape, got {spec!r}")
    if shape.rank == 0:
        raise ValueError(f"{name} must name at least one dimension, got {spec!r}")
    if math.batch(shape).rank:
        raise ValueError(
            f"{name} must not contain batch dimensions (the leading torch dim is the batch), "
            f"got {spec!r}"
        )
    return shape


_AXIS_ORDER = {"x": 0, "y": 1, "z": 2}


def _canonical_order(shape: Any, math: Any) -> tuple[list[int], Any]:
    """Permutation putting the spatial dims named x, y, z in PhiFlow's order (x, y, z).

    PhiFlow grids list their resolution as ``(x, y, z)`` and some of its resampling code
    requires the values' spatial dims in that order, while torch code usually stores images
    as ``(..., y, x)``. Only the positions of those spatial dims are permuted among themselves.
    """
    names = list(shape.names)
    spatial = set(math.spatial(shape).names)
    slots = [i for i, n in enumerate(names) if n in spatial and n in _AXIS_ORDER]
    ordered = sorted(slots, key=lambda i: _AXIS_ORDER[names[i]])
    perm = list(range(len(names)))
    for slot, source in zip(slots, ordered, strict=True):
        perm[slot] = source
    from phiml.math import concat_shapes

    return perm, concat_shapes(*(shape[i] for i in perm))


def _wrap(x: torch.Tensor, shape: Any, batch_dim: str, math: Any) -> Any:
    for name, size, actual in zip(shape.names, shape.sizes, x.shape[1:], strict=True):
        if size is not None and size != actual:
            raise ValueError(
                f"x has size {actual} along {name!r}, but x_dims gives it size {size} "
                f"(x shape {tuple(x.shape)}, dims {shape})"
            )
    perm, ordered = _canonical_order(shape, math)
    if perm != sorted(perm):
        x = x.permute(0, *(p + 1 for p in perm))  # a view: no copy, gradients kept
    return math.tensor(x, math.batch(batch_dim), ordered, convert=False)


def to_phiml(x: torch.Tensor, dims: Any, batch_dim: str = "batch") -> Any:
    """Wrap a torch tensor ``(B, *rest)`` as a phiml tensor (no copy, gradients kept).

    Spatial dims named ``x``, ``y``, ``z`` are reordered (as a view) to PhiFlow's ``x, y, z``
    order, so a torch image ``(B, ny, nx)`` is passed as ``dims="y:s,x:s"``.

    Args:
        x: ``(B, *rest)`` torch tensor.
        dims: phiml shape spec of the ``rest`` dims, e.g. ``"y:s,x:s"``, or a ``Shape``.
        batch_dim: name of the phiml batch dimension for the leading dim.

    Returns:
        A phiml ``Tensor`` with shape ``(batch_dim: B, *dims)``.
    """
    math = require_phiflow()
    shape = _parse_dims("dims", dims, math)
    if x.dim() != shape.rank + 1:
        raise ValueError(
            f"x must have shape (batch, {', '.join(shape.names)}) ({shape.rank + 1} dims), "
            f"got {tuple(x.shape)}"
        )
    return _wrap(x, shape, batch_dim, math)


def from_phiml(value: Any, dims: Any, batch_dim: str = "batch") -> torch.Tensor:
    """The torch tensor ``(B, *dims)`` of a phiml ``Tensor`` or a PhiFlow ``Field``.

    Args:
        value: phiml ``Tensor`` or PhiFlow ``Field`` (its ``values`` are used).
        dims: the non-batch dims in the wanted order (a spec string or ``Shape``; only the
            names are used, e.g. ``"~vector,y,x"`` or ``"y:s,x:s"``).
        batch_dim: name of the batch dimension, placed first.

    Returns:
        A torch tensor that is part of the autograd graph of the computation.
    """
    math = require_phiflow()
    names = _dim_names(dims)
    values = getattr(value, "values", value)
    if not isinstance(values, math.Tensor):
        raise TypeError(
            f"the PhiFlow function must return a phiml Tensor or a Field, got "
            f"{type(value).__name__}"
        )
    missing = [n for n in (batch_dim, *names) if n not in values.shape]
    if missing:
        raise ValueError(
            f"the PhiFlow result {values.shape} lacks the dimension(s) {missing}; pass y_dims "
            f"naming its non-batch dims (it must keep the batch dim {batch_dim!r})"
        )
    extra = [n for n in values.shape.names if n not in (batch_dim, *names)]
    if extra:
        raise ValueError(
            f"the PhiFlow result {values.shape} has dimension(s) {extra} not named in y_dims"
        )
    out = values.native([batch_dim, *names])
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"the PhiFlow result is a {type(out).__name__}, not a torch tensor: run it with the "
            f"torch backend (from phi.torch.flow import *)"
        )
    return out


def _dim_names(dims: Any) -> list[str]:
    if isinstance(dims, str):
        from phiml.math._shape import parse_shape_spec

        return list(parse_shape_spec(dims).names)
    if hasattr(dims, "names"):
        return list(dims.names)
    if isinstance(dims, list | tuple) and all(isinstance(n, str) for n in dims):
        return list(dims)
    raise TypeError(f"dims must be a phiml shape spec string or Shape, got {dims!r}")


def phiflow_physics(
    fn: Callable[[Any], Any],
    x_dims: Any,
    y_dims: Any | None = None,
    *,
    batch_dim: str = "batch",
    precision: int | None = None,
) -> Physics:
    """Turn a PhiFlow function into a batched, differentiable physgrad physics.

    Args:
        fn: ``fn(x) -> y`` on phiml: ``x`` is a phiml ``Tensor`` with dims
            ``(batch_dim, *x_dims)``; ``y`` a phiml ``Tensor`` or a ``Field`` whose values have
            dims ``(batch_dim, *y_dims)`` (any order). Build fields inside ``fn``, e.g.
            ``CenteredGrid(x, extrapolation.PERIODIC, bounds=Box(x=64, y=64))``. Samples must
            stay independent along ``batch_dim``.
        x_dims: phiml shape spec of ``x``'s non-batch dims in torch order, e.g. ``"y:s,x:s"``,
            ``"vector:c=(x,y),y:s,x:s"``, ``"params:c"``; or a phiml ``Shape``. Spatial dims
            named ``x``, ``y``, ``z`` are handed to PhiFlow in its ``(x, y, z)`` order (a
            transposed view), whatever their torch order.
        y_dims: the output's non-batch dims in the torch order wanted (spec or ``Shape``;
            names are enough, e.g. ``"~vector,y,x"``). Default: ``x_dims``.
        batch_dim: name of the phiml batch dimension (default ``"batch"``).
        precision: phiml floating-point bits (16, 32, 64) inside ``fn``; default: that of the
            input tensor (float64 in, float64 arithmetic).

    ``fn`` runs in phiml's torch backend context, and torch becomes phiml's global default
    backend (as after ``from phi.torch.flow import *``): backpropagation runs PhiFlow's gradient
    code outside of any context, and with NumPy as the default it fails in phiml 1.16.

    Returns:
        ``physics(x: torch.Tensor (B, *x_shape)) -> torch.Tensor (B, *y_shape)``.

    Raises:
        ImportError: if phiflow is not installed (``pip install physgrad[phiflow]``).

    Example::

        from phi.torch.flow import CenteredGrid, Box, advect, extrapolation, math
        from physgrad.interop import phiflow_physics

        def shift(x):            # x: phiml (batch, y, x) marker; moves it by 8 units along x
            m = CenteredGrid(x, extrapolation.PERIODIC, bounds=Box(x=64, y=64))
            v = CenteredGrid(math.vec(x=1.0, y=0.0), extrapolation.PERIODIC,
                             bounds=Box(x=64, y=64), resolution=m.resolution)
            return advect.semi_lagrangian(m, v, dt=8.0)

        physics = phiflow_physics(shift, "y:s,x:s")   # (B, ny, nx) -> (B, ny, nx)
    """
    math = require_phiflow()
    check_callable("fn", fn)
    if not isinstance(batch_dim, str) or not batch_dim.isidentifier():
        raise ValueError(f"batch_dim must be a dimension name, got {batch_dim!r}")
    if precision not in (None, 16, 32, 64):
        raise ValueError(f"precision must be None, 16, 32 or 64, got {precision!r}")
    x_shape = _parse_dims("x_dims", x_dims, math)
    _torch_by_default()
    y_names = _dim_names(x_shape if y_dims is None else y_dims)

    def physics(x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != x_shape.rank + 1:
            raise ValueError(
                f"x must have shape (batch, {', '.join(x_shape.names)}), got {tuple(x.shape)}"
            )
        bits = precision or _PRECISION.get(x.dtype, 32)
        with math.precision(bits), torch_backend():
            xt = _wrap(x, x_shape, batch_dim, math)
            return from_phiml(fn(xt), y_names, batch_dim)

    physics.__name__ = f"phiflow_physics({getattr(fn, '__name__', 'fn')})"
    physics.__doc__ = f"PhiFlow function {getattr(fn, '__name__', fn)!r} as a physgrad physics."
    return physics


# --------------------------------------------------------------------------- fluid layouts


def centered_grid(values: torch.Tensor, domain: Any, batch_dim: str = "batch") -> Any:
    """A periodic PhiFlow ``CenteredGrid`` from a physgrad fluid scalar/vector field.

    Args:
        values: ``(B, ny, nx)`` scalar or ``(B, 2, ny, nx)`` vector (channel order ``(x, y)``)
            on the cell centres of ``domain`` (:class:`physgrad.physics.fluid.Domain`).
        domain: the periodic domain (its size gives PhiFlow's ``bounds``).
        batch_dim: name of the phiml batch dimension.

    Returns:
        ``CenteredGrid`` with ``extrapolation.PERIODIC``, sharing memory and autograd graph.
    """
    spec = "y:s,x:s" if values.dim() == 3 else "vector:c=(x,y),y:s,x:s"
    return _periodic_grid(to_phiml(values, spec, batch_dim), domain, staggered=False)


def staggered_grid(values: torch.Tensor, domain: Any, batch_dim: str = "batch") -> Any:
    """A periodic PhiFlow ``StaggeredGrid`` from a physgrad staggered velocity.

    physgrad's ``(B, 2, ny, nx)`` layout (``u`` on the left faces at ``(i dx, (j + 1/2) dy)``,
    ``v`` on the bottom faces at ``((i + 1/2) dx, j dy)``) is exactly PhiFlow's periodic
    staggered layout, so this only renames dimensions (``~vector``, ``y``, ``x``).
    """
    values = to_phiml(values, "~vector:d=(x,y),y:s,x:s", batch_dim)
    return _periodic_grid(values, domain, staggered=True)


def _periodic_grid(values: Any, domain: Any, staggered: bool) -> Any:
    """A PhiFlow ``StaggeredGrid`` or ``CenteredGrid`` of phiml ``values`` on the periodic
    ``domain``."""
    from phi import field
    from phi.geom import Box
    from phiml.math import extrapolation

    bounds = Box(x=domain.size_x, y=domain.size_y)
    grid = field.StaggeredGrid if staggered else field.CenteredGrid
    return grid(values, extrapolation.PERIODIC, bounds=bounds, x=domain.nx, y=domain.ny)


def phiflow_fluid_step(
    marker: Any, velocity: Any, dt: float, *, scheme: str = "mac_cormack", solve: Any = None
) -> tuple[Any, Any, Any]:
    """physgrad's fluid step (:class:`~physgrad.physics.fluid.FluidSimulator`) written in PhiFlow.

    Self-advect the staggered velocity, project it (``fluid.make_incompressible``), rescale
    each velocity component's mean squared value to its value before the step (physgrad's
    ``energy="component"``), then advect the marker with the new velocity.

    Args:
        marker: ``CenteredGrid`` (periodic).
        velocity: ``StaggeredGrid`` (periodic).
        dt: time step.
        scheme: ``"mac_cormack"`` or ``"semi_lagrangian"`` (``phi.physics.advect``).
        solve: ``phiml.math.Solve`` for the pressure (default ``Solve("auto", 1e-5, 1e-5)``).

    Returns:
        ``(marker, velocity, pressure)`` as PhiFlow fields.
    """
    math = require_phiflow()
    from phi.physics import advect, fluid

    advection = {"mac_cormack": advect.mac_cormack, "semi_lagrangian": advect.semi_lagrangian}
    if scheme not in advection:
        raise ValueError(f"scheme must be one of {sorted(advection)}, got {scheme!r}")
    solve = solve if solve is not None else math.Solve("auto", 1e-5, 1e-5)
    _torch_by_default()
    with torch_backend():
        e0 = math.mean(velocity.values**2, "x,y")  # per component, like physgrad's default
        v = advection[scheme](velocity, velocity, dt)
        v, p = fluid.make_incompressible(v, (), solve)
        e = math.mean(v.values**2, "x,y")
        v = v.with_values(v.values * math.sqrt(e0 / e))
        m = advection[scheme](marker, v, dt)
    return m, v, p
