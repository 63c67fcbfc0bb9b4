"""Shared pieces of the inverse solvers: validation, objective gradients, per-sample curvature."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import torch

from physgrad._validation import check_finite, check_same_batch, check_tensor, short_text
from physgrad.core import (
    NOT_DIFFERENTIABLE_HINT,
    NonDifferentiableError,
    NonFiniteError,
    Objective,
    Physics,
    run_objective,
    run_physics,
    squared_error,
)

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Solved in float32 and cast back: eigh/svd have no half kernels, and a line search or a
Newton step in 3 significant digits is mostly round-off."""


class Solver:
    """Base class: validates the call, then runs ``_solve``. Subclasses set ``objective``.

    Every solver is an :class:`~physgrad.InverseSolver`: ``x0 (B, *x_shape)``,
    ``y_target (B, *y_shape)`` -> ``x_n (B, *x_shape)``, each sample solved independently.

    The checks every solver gets: finite ``x0`` and ``y_target`` (``ValueError``); the physics
    output at every point where the solver takes a gradient is finite
    (:class:`~physgrad.core.NonFiniteError`) and differentiable
    (:class:`~physgrad.core.NonDifferentiableError`); float16/bfloat16 inputs are solved in
    float32 and the answer is cast back to ``x0``'s dtype.

    A subclass defines either ``_iterates`` (a generator of the iterate after each step; the
    answer is the last one) or, for a one-shot solver, ``_solve``. The library's solvers are
    frozen dataclasses (``@dataclass(frozen=True, repr=False)``) whose fields are their
    settings, validated in ``__post_init__``; the ``repr`` below shows every field.
    """

    objective: Objective = staticmethod(squared_error)  # type: ignore[assignment]

    def __call__(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        """Run the solver from ``x0`` on every sample of the batch.

        Args:
            x0: starting point ``(B, *x_shape)`` (the network's prediction), finite.
            y_target: observations ``(B, *y_shape)``, finite; the physics runs in its dtype.
            physics: batched callable ``x (B, *x_shape) -> y (B, *y_shape)``.

        Returns:
            ``x_n`` with the shape of ``x0``, detached (no autograd history).
        """
        x0, y_target, checked, dtype = self._prepare(x0, y_target, physics)
        with torch.enable_grad():
            x_n = self._solve(x0, y_target, checked)
        return x_n.detach().to(dtype)

    def iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        """Every iterate of :meth:`__call__`: ``x0``, then the point after each step.

        Lazy (one step per ``next``), so a long run need not keep its iterates; the inputs
        are checked at once, as by :meth:`__call__`. The last iterate equals the solver's
        answer ``solver(x0, y_target, physics)``. An iterative solver yields ``steps + 1``
        tensors, fewer when it stops early (:class:`~physgrad.solvers.LBFGS` once every
        sample has converged; samples that stop first stay put); a one-shot solver yields 2.
        The arguments are those of :meth:`__call__`.

        Returns:
            An iterator of ``(B, *x_shape)`` tensors in ``x0``'s dtype, detached.
        """
        start, y_target, checked, dtype = self._prepare(x0, y_target, physics)
        return self._traced(x0.detach(), start, y_target, checked, dtype)

    def _traced(
        self,
        x0: torch.Tensor,
        start: torch.Tensor,
        y_target: torch.Tensor,
        physics: Physics,
        dtype: torch.dtype,
    ) -> Iterator[torch.Tensor]:
        yield x0
        steps = self._iterates(start, y_target, physics)
        while True:
            with torch.enable_grad():  # only around the step: the caller keeps its grad mode
                x = next(steps, None)
            if x is None:
                return
            yield x.detach().to(dtype)

    def _prepare(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor, Physics, torch.dtype]:
        """The checks of every call; returns detached inputs (half precision as float32), the
        physics wrapped to check its outputs, and the dtype of the answer (``x0``'s)."""
        check_tensor("x0", x0)
        check_tensor("y_target", y_target)
        check_same_batch("x0", x0, "y_target", y_target)
        check_finite("x0", x0)
        check_finite("y_target", y_target)
        if not callable(physics):
            raise TypeError(f"physics must be a callable x -> y, got {physics!r}")
        dtype = x0.dtype
        if x0.dtype in HALF_DTYPES:
            x0 = x0.float()
        if y_target.dtype in HALF_DTYPES:
            y_target = y_target.float()
        return x0.detach(), y_target.detach(), _CheckedPhysics(physics, self), dtype

    def _iterates(
        self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> Iterator[torch.Tensor]:
        """The point after each step (not ``x0``); default: the one step ``_solve``.

        Generators must not yield inside a ``torch.no_grad()`` block: the consumer would run
        in that grad mode until the next step."""
        if type(self)._solve is Solver._solve:
            raise NotImplementedError(f"{type(self).__name__} defines neither _iterates nor _solve")
        yield self._solve(x0, y_target, physics)

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        x = None
        for x in self._iterates(x0, y_target, physics):  # noqa: B007 - the last one is the answer
            pass
        return x0.clone() if x is None else x  # no step taken: never hand back x0 itself

    def _store(self, **values: object) -> None:
        """Set validated (converted) field values of a frozen dataclass in ``__post_init__``."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        if not dataclasses.is_dataclass(self):
            return object.__repr__(self)
        shown = (f for f in dataclasses.fields(self) if f.repr)
        settings = ", ".join(f"{f.name}={_describe(getattr(self, f.name))}" for f in shown)
        return f"{type(self).__name__}({settings})"

    def loss(self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        """Per-sample objective ``(B,)`` at ``x``.

        Args:
            x: ``(B, *x_shape)``.
            y_target: ``(B, *y_shape)``.
            physics: batched callable ``x -> y``.

        Returns:
            ``(B,)`` objective values.
        """
        return run_objective(self.objective, run_physics(x, y_target, physics), y_target)

    def loss_and_grad(
        self, x: torch.Tensor, y_target: torch.Tensor, physics: Physics
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample objective ``(B,)`` and its gradient w.r.t. ``x`` (shape of ``x``).

        Samples are independent, so the gradient of the batch sum is the per-sample gradient.
        The arguments are those of :meth:`loss`.

        Returns:
            ``(loss, grad)``: detached ``(B,)`` objective and ``(B, *x_shape)`` gradient.

        Raises:
            NonFiniteError: the gradient contains NaN/inf.
        """
        x = x.detach().requires_grad_(True)
        loss = self.loss(x, y_target, physics)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        finite = torch.isfinite(grad)
        if not bool(finite.all()):
            raise NonFiniteError(
                f"objective gradient dL/dx contains {int((~finite).sum())} non-finite value(s) "
                f"(NaN or inf) in {self!r}: the physics' derivatives are not finite there"
            )
        return loss.detach(), grad


def _describe(value: object) -> str:
    """A field value for a solver's ``repr``: a tensor by shape and dtype, a function by its
    qualified name without enclosing functions (no memory address, so the repr is the same in
    every run), anything else by repr."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"<tensor {tuple(value.shape)} {dtype}>"
    name = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(name, str) and not isinstance(value, type):
        return name.rsplit("<locals>.", 1)[-1]
    return repr(value)


class _CheckedPhysics:
    """The user's physics, with its output checked for NaN/inf wherever a solver takes a
    gradient (grad mode on, outside ``torch.func`` transforms). Line-search trials run under
    ``torch.no_grad`` and may be non-finite: the search rejects them."""

    def __init__(self, physics: Physics, solver: Solver):
        self.physics, self.solver = physics, solver

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.physics(x)
        if (
            isinstance(y, torch.Tensor)
            and torch.is_grad_enabled()
            and not torch._C._functorch.is_functorch_wrapped_tensor(y)
        ):
            finite = torch.isfinite(y)
            if not bool(finite.all()):
                raise NonFiniteError(
                    f"physics output contains {int((~finite).sum())} non-finite value(s) "
                    f"(NaN or inf) in {self.solver!r}"
                )
        return y

    def __getattr__(self, name: str) -> object:  # attributes of the user's physics
        return getattr(self.physics, name)


def block_hessian(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per-sample Hessians of a batch-separable scalar function.

    ``fn(x) -> (B,)`` must treat samples independently, so the Hessian of ``fn(x).sum()`` is
    block diagonal. Its blocks are found with one Hessian-vector product per flattened
    coordinate (forward-over-reverse, vectorised with ``torch.func.vmap``), not one per sample.

    Args:
        fn: batched scalar function.
        x: ``(B, *shape)``; let ``d = prod(shape)``.

    Returns:
        ``(B, d, d)`` Hessians.
    """
    batch, dim = x.shape[0], x[0].numel()
    grad_fn = torch.func.grad(lambda w: fn(w).sum())
    eye = torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, 1, *x.shape[1:])
    tangents = eye.expand(dim, batch, *x.shape[1:])
    columns = torch.func.vmap(lambda v: torch.func.jvp(grad_fn, (x,), (v,))[1])(tangents)
    # columns[j, b] = H_b[:, j]
    return columns.reshape(dim, batch, dim).permute(1, 2, 0)


def batched_jacobian(physics: Physics, x: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians ``(B, dy, dx)`` of a batched physics, by forward-mode AD.

    One Jacobian-vector product per flattened input coordinate (vmapped), valid because a
    batched physics maps sample ``b`` of ``x`` only to sample ``b`` of ``y``.

    Raises:
        NonDifferentiableError: the physics cannot be traced by forward-mode AD (numpy
            inside it), or its Jacobian is zero for every sample of the batch (it cuts the
            graph with ``.detach()``/``.data``, or every sample sits at a stationary point).
        NonFiniteError: the Jacobian contains NaN/inf.
    """
    batch, dim = x.shape[0], x[0].numel()
    eye = torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, 1, *x.shape[1:])
    tangents = eye.expand(dim, batch, *x.shape[1:])
    try:
        columns = torch.func.vmap(lambda v: torch.func.jvp(physics, (x,), (v,))[1])(tangents)
    except RuntimeError as exc:
        raise NonDifferentiableError(
            f"cannot differentiate the physics with forward-mode AD (torch.func.jvp): "
            f"{short_text(exc)}; {NOT_DIFFERENTIABLE_HINT}"
        ) from None
    jac = columns.reshape(dim, batch, -1).permute(1, 2, 0)
    finite = torch.isfinite(jac)
    if not bool(finite.all()):
        raise NonFiniteError(
            f"physics Jacobian dy/dx contains {int((~finite).sum())} non-finite value(s) "
            "(NaN or inf)"
        )
    if not bool(jac.any()):
        raise NonDifferentiableError(
            f"physics Jacobian dy/dx is exactly zero for all {batch} samples: "
            f"{NOT_DIFFERENTIABLE_HINT} (or every sample sits at a stationary point)"
        )
    return jac


def descent_step(
    hessian: torch.Tensor,
    grad: torch.Tensor,
    damping: float,
    *,
    relative: bool = False,
    scaling: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve ``(|H| + λ I) dx = -g`` per sample via the eigen-decomposition of ``H``.

    ``|H|`` replaces each eigenvalue by its magnitude, so the step always descends even where
    ``H`` is indefinite (it walks toward minima, never maxima or saddles, as the paper's
    direction-flipped Newton update). Eigen-directions whose curvature is zero to round-off
    (and that are undamped) get no step instead of an infinite one: a pseudo-inverse.

    With ``scaling = s`` (positive, ``(B, d)``) the system is solved in the rescaled
    coordinates ``u = s ⊙ dx``, i.e. ``H̃ = H / (s sᵀ)`` and ``g̃ = g / s``; with ``s² = diag(H)``
    (Marquardt's choice) ``λ I`` in those coordinates is ``λ diag(H)`` in the original ones,
    and the step no longer depends on the units of the individual components of ``x``.

    Args:
        hessian: ``(B, d, d)`` symmetric.
        grad: ``(B, d)``.
        damping: Levenberg-Marquardt damping ``λ >= 0``: in units of the curvature if
            ``relative`` is false, else a fraction of each sample's largest ``|eigenvalue|``
            (of the rescaled ``H̃`` when ``scaling`` is given).
        relative: interpret ``damping`` relative to the spectrum (scale-free).
        scaling: optional ``(B, d)`` positive per-component scales ``s``.

    Returns:
        ``(B, d)`` step.
    """
    if scaling is not None:
        hessian = hessian / (scaling.unsqueeze(-1) * scaling.unsqueeze(-2))
        grad = grad / scaling
    eigvals, eigvecs = symmetric_eigh(hessian)
    g_eig = (eigvecs.transpose(-1, -2) @ grad.unsqueeze(-1)).squeeze(-1)
    scale = eigvals.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(grad.dtype).tiny)
    curvature = eigvals.abs() + (damping * scale if relative else damping)
    singular = curvature <= scale * torch.finfo(grad.dtype).eps * grad.shape[-1]
    inv = torch.where(singular, torch.zeros_like(curvature), 1.0 / curvature.clamp_min(
        torch.finfo(grad.dtype).tiny))
    step = (eigvecs @ (-g_eig * inv).unsqueeze(-1)).squeeze(-1)
    return step if scaling is None else step / scaling


def symmetric_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh`` of the symmetric part of ``matrix`` ``(B, d, d)``, with one-line
    errors: :class:`~physgrad.core.NonFiniteError` for NaN/inf entries or no convergence.

    Returns eigenvalues ``(B, d)`` (ascending) and eigenvectors ``(B, d, d)`` (columns).
    """
    finite = torch.isfinite(matrix)
    if not bool(finite.all()):
        raise NonFiniteError(
            f"curvature (Hessian or J^T J) contains {int((~finite).sum())} non-finite value(s) "
            "(NaN or inf): the physics' derivatives are not finite at x0"
        )
    try:
        return torch.linalg.eigh(0.5 * (matrix + matrix.transpose(-1, -2)))
    except torch.linalg.LinAlgError as exc:
        raise NonFiniteError(
            f"eigendecomposition of the curvature failed: {short_text(exc)}") from None


def marquardt_scaling(curvature: torch.Tensor) -> torch.Tensor:
    """Per-component scales ``s = sqrt(diag(C))`` of a PSD curvature ``C`` ``(B, d, d)``.

    Components with zero curvature (no influence on the objective at this point) get ``s = 1``:
    their gradient is zero too, so they get no step whatever their scale. Returns ``(B, d)``.
    """
    diag = torch.diagonal(curvature, dim1=-2, dim2=-1).abs()
    return torch.where(diag > 0, diag, torch.ones_like(diag)).sqrt()


def backtrack(
    x: torch.Tensor,
    step: torch.Tensor,
    loss: torch.Tensor,
    grad: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    halvings: int,
    *,
    slope: torch.Tensor | None = None,
    done: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample Armijo backtracking along ``step``: ``x + α step`` with the first
    ``α ∈ {1, ½, ¼, …}`` (at most ``halvings`` halvings) for which
    ``L(x + α step) <= L(x) + 1e-4 α gᵀstep``; samples where none qualifies stay at ``x``.

    Unit-free (a ratio of objective values), so it keeps a solver scale-invariant. It costs
    one evaluation of ``loss_fn`` (no gradient) per trial, and all samples are tried together.

    Args:
        x: ``(B, *shape)`` current point.
        step: ``(B, *shape)`` proposed step (a descent direction).
        loss: ``(B,)`` objective at ``x``.
        grad: ``(B, *shape)`` its gradient at ``x``.
        loss_fn: batched objective ``(B, *shape) -> (B,)``.
        halvings: number of halvings after the full step (``>= 0``).
        slope: ``(B,)`` ``gᵀstep`` if the caller has it (default: from ``grad`` and ``step``).
        done: ``(B,)`` bool, samples that stay at ``x`` untried (default: none).

    Returns:
        ``(B, *shape)`` the accepted point.
    """
    batch = x.shape[0]
    if slope is None:
        slope = (grad.reshape(batch, -1) * step.reshape(batch, -1)).sum(dim=1)
    alpha = torch.ones_like(loss)
    accepted = torch.zeros_like(loss, dtype=torch.bool) if done is None else done
    best = x
    view = (batch,) + (1,) * (x.dim() - 1)
    for _ in range(halvings + 1):
        trial = x + alpha.reshape(view) * step
        with torch.no_grad():
            value = loss_fn(trial)
        ok = ~accepted & torch.isfinite(value) & (value <= loss + 1e-4 * alpha * slope)
        best = torch.where(ok.reshape(view), trial, best)
        accepted = accepted | ok
        if bool(accepted.all()):
            break
        alpha = torch.where(accepted, alpha, 0.5 * alpha)
    return best
