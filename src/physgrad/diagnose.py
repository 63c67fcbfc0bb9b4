"""Look at a physics before training on it: ``physgrad.diagnose(problem)`` / ``physgrad diagnose``.

On a small sample of the problem (seconds) it measures whether the physics is finite and
differentiable (and forward-mode AD works), its scale disparity (condition number,
sensitivity spread, spread across samples: what PG removes), its multimodality (does a local
solver started from other samples' solutions come back to ``x``?) and the cost of a PG step,
and recommends which methods to compare first. The thresholds are rules of thumb, checked
against the built-in experiments in docs/own-physics.md ("Diagnose it"); they do not replace
the comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from physgrad._validation import check_finite, check_seed, check_tensor
from physgrad.core import Physics, run_physics, squared_error
from physgrad.problems.base import Problem
from physgrad.solvers import LBFGS, GaussNewton, GradientDescent, Newton
from physgrad.solvers.base import batched_jacobian

BADLY_SCALED = 100.0
"""A spread (ratio of largest to smallest) at or above this is a scale disparity PG can remove."""
WELL_SCALED = 10.0
"""Below this in every spread the problem is well conditioned: Adam is probably as good."""
MULTIMODAL = 0.25
"""Fraction of starts that end away from ``x`` above which the problem counts as multimodal."""
MAX_JACOBIAN_ENTRIES = 2**24
"""Jacobians are formed for as many samples as fit in this many entries (at least one)."""
SMALL_X = 64
"""Up to this many unknowns per sample, Gauss-Newton / Newton are the generic solvers to try."""
SKETCH = 256
"""Larger Jacobians are sketched with this many random directions: the condition number of the
sketch is a lower bound of J's (reported as ">=")."""
SMALL_Y_FOR_HIG = 256
"""Up to this many outputs per sample, HIG's Jacobian stays small for a small network."""


@dataclass
class Diagnosis:
    """What :func:`diagnose` measured (all plain numbers, JSON-serialisable).

    Spreads are ratios largest / smallest (``inf``: a zero singular value or an insensitive
    unknown); medians and maxima are over the samples whose Jacobian was formed.
    """

    samples: int
    x_size: int
    y_size: int
    finite: bool
    forward_mode: bool = False
    gradient_error: float | None = None
    """Median relative difference between ``J v`` and a central finite difference."""
    jacobian_samples: int = 0
    condition_is_lower_bound: bool = False
    """True when J was too large and only a random sketch of it was examined."""
    condition_median: float | None = None
    condition_max: float | None = None
    sensitivity_spread: float | None = None
    """Median over samples of the ratio of the largest to the smallest column norm of J."""
    across_samples_spread: float | None = None
    """Ratio of the largest to the smallest per-sample top singular value."""
    starts: int = 0
    found_x: float | None = None
    """Fraction of solver starts that came back to the sample's ``x``."""
    other_solution: float | None = None
    """Fraction that reached the same objective at another ``x`` behind a barrier (another
    minimum: a multimodal inverse, e.g. a mirrored elbow)."""
    flat_valley: float | None = None
    """Fraction that reached the same objective at another ``x`` joined to it by a flat valley
    (the data do not determine x there: an ill-posed, e.g. diffusive, inverse)."""
    local_minimum: float | None = None
    """Fraction that stopped at a higher objective with a vanished gradient (a local minimum)."""
    not_converged: float | None = None
    """Fraction still at a higher objective and still moving after the solver's steps (slow,
    e.g. ill-conditioned with L-BFGS; says nothing about minima)."""
    multistart_solver: str = ""
    step_cost: dict[str, float] = field(default_factory=dict)
    """One solver call per PG step (started at other samples' x, as early in training), in
    units of one physics call on the same batch."""
    physics_ms: float | None = None
    """Milliseconds of one physics call on the batch."""
    domain_solvers: list[str] = field(default_factory=list)
    verdict: str = ""
    methods: list[str] = field(default_factory=list)
    """CLI method names to compare first (``physgrad compare --problem ... --methods``)."""
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        """A plain-text report: measurements, verdict, methods and reasons."""
        f = _fmt
        ge = ">=" if self.condition_is_lower_bound else ""
        lines = [
            f"samples: {self.samples} (Jacobian on {self.jacobian_samples}), unknowns per "
            f"sample: {self.x_size}, outputs per sample: {self.y_size}",
            f"finite: {'yes' if self.finite else 'NO'}; forward-mode AD (Newton, "
            f"Gauss-Newton): {'yes' if self.forward_mode else 'no'}; J v vs finite "
            f"differences: {f(self.gradient_error)} relative difference",
            f"condition number of J within a sample: median {ge}{f(self.condition_median)}, "
            f"max {ge}{f(self.condition_max)}"
            + (f" (sketch of {SKETCH} directions)" if self.condition_is_lower_bound else ""),
            f"sensitivity spread between unknowns (column norms of J): "
            f"{f(self.sensitivity_spread)}",
            f"largest singular value across samples: spread {f(self.across_samples_spread)}",
            f"multistart ({self.starts} starts per sample from other samples' x, "
            f"{self.multistart_solver}): back to x {_pct(self.found_x)}, another minimum "
            f"{_pct(self.other_solution)}, elsewhere in a flat valley {_pct(self.flat_valley)}, "
            f"stuck in a local minimum {_pct(self.local_minimum)}, not converged "
            f"{_pct(self.not_converged)}",
            f"cost of one PG step (x one physics call of {f(self.physics_ms)} ms): "
            + ", ".join(f"{k} {v:.3g}" for k, v in self.step_cost.items()),
        ]
        if self.domain_solvers:
            lines.append("domain solvers: " + ", ".join(self.domain_solvers))
        lines += [
            "",
            f"verdict: {self.verdict}",
            "compare first: " + (", ".join(self.methods) or "(none)"),
            *[f"- {r}" for r in self.reasons],
            f"({self.seconds:.1f} s)",
        ]
        return "\n".join(lines)


def diagnose(
    problem_or_physics: Problem | Physics,
    x: torch.Tensor | None = None,
    *,
    samples: int = 8,
    starts: int = 3,
    seed: int = 0,
) -> Diagnosis:
    """Measure conditioning, multimodality and solver cost of a physics on a small sample.

    Args:
        problem_or_physics: a :class:`~physgrad.problems.Problem` (its sampler supplies
            ``y*`` and, if it returns ground truth, ``x``) or a batched physics
            ``x (B, *x_shape) -> y (B, *y_shape)``.
        x: points ``(B, *x_shape)`` to examine, e.g. typical solutions; required for a plain
            physics or a problem without ground truth. Their targets are then their own
            noise-free outputs (with the conditions of ``B`` sampled problems). For a problem
            with ground truth the default is ``samples`` sampled ``x_true`` and their ``y*``.
        samples: problems drawn from the problem's sampler (ignored when ``x`` is given).
        starts: solver starts per sample for the multimodality check (``>= 1``; needs at
            least two samples: the starts are the other samples' ``x``).
        seed: sampler seed.

    Returns:
        A :class:`Diagnosis`; ``print(d.report())`` for the text.
    """
    clock = time.perf_counter()
    if starts < 1:
        raise ValueError(f"starts must be >= 1, got {starts}")
    check_seed(seed)
    if x is not None:
        check_finite("x", check_tensor("x", x))
    physics, objective, x, y_target, domain = _inputs(problem_or_physics, x, samples, seed)
    batch = x.shape[0]
    x = x.to(y_target.dtype) if not y_target.is_complex() else x

    def loss(z: torch.Tensor) -> torch.Tensor:
        return objective(run_physics(z, y_target, physics), y_target)

    with torch.no_grad():
        y = run_physics(x, y_target, physics)
    finite = bool(torch.isfinite(y).all())
    d = Diagnosis(samples=batch, x_size=x[0].numel(), y_size=y[0].numel(), finite=finite,
                  starts=min(starts, batch - 1), domain_solvers=domain)
    if finite:
        _jacobian_checks(d, physics, x, y_target)
        _multistart(d, loss, physics, x, y_target)
        _costs(d, physics, x, y_target, loss)
    _recommend(d)
    d.seconds = time.perf_counter() - clock
    return d


def _inputs(
    source: Problem | Physics, x: torch.Tensor | None, samples: int, seed: int
) -> tuple[Physics, Callable, torch.Tensor, torch.Tensor, list[str]]:
    if isinstance(source, Problem):
        if samples < 2 and x is None:
            raise ValueError(f"samples must be >= 2, got {samples}")
        n = samples if x is None else x.shape[0]
        batch = source.sample(n, torch.Generator().manual_seed(seed))
        if x is None:
            if batch.x_true is None:
                raise ValueError(
                    f"problem {source.name!r} has no ground truth x_true: pass x=... "
                    "(typical solutions, (B, *x_shape)) to diagnose it"
                )
            x, y_target = batch.x_true, batch.y_target
        else:  # the given points solve their own noise-free targets (conditions from the batch)
            if batch.x_true is not None and x.shape[1:] != batch.x_true.shape[1:]:
                raise ValueError(
                    f"x has shape {tuple(x.shape)}, but problem {source.name!r} samples x of "
                    f"shape {tuple(batch.x_true.shape)} (B, *x_shape)"
                )
            with torch.no_grad():
                y_target = run_physics(x.detach(), batch.y_target, source.physics(batch))
        return (source.physics(batch), source.objective, x.detach(), y_target,
                [f"pg-{n}" for n in source.solvers(batch)])
    if not callable(source):
        raise TypeError(f"diagnose needs a Problem or a physics callable, got {source!r}")
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 2:
        raise ValueError("diagnosing a plain physics needs x=... with at least 2 samples")
    with torch.no_grad():
        y_target = source(x.detach())
    return source, squared_error, x.detach(), y_target, []


def _jacobian_checks(d: Diagnosis, physics: Physics, x: torch.Tensor, y_t: torch.Tensor) -> None:
    size = d.x_size * d.y_size
    sketch = size > MAX_JACOBIAN_ENTRIES
    n = min(x.shape[0], 2) if sketch else max(1, min(x.shape[0], MAX_JACOBIAN_ENTRIES // size))
    d.jacobian_samples = n
    d.condition_is_lower_bound = sketch
    xs, ys = x[:n], y_t[:n]

    def phys(z: torch.Tensor) -> torch.Tensor:
        return run_physics(z, ys, physics)

    gen = torch.Generator().manual_seed(1)
    if sketch:  # J Ω for an orthonormal Ω (dx, k): its singular values interlace J's
        k = min(SKETCH, d.x_size, d.y_size)
        omega = torch.linalg.qr(torch.randn(d.x_size, k, generator=gen, dtype=torch.float64))[0]
        jac, d.forward_mode = _sketch(phys, xs, omega)
    else:
        try:
            jac = batched_jacobian(phys, xs)
            d.forward_mode = True
        except Exception:  # noqa: BLE001 - any failure means: no forward mode for this physics
            jac = _reverse_jacobian(phys, xs)
    if jac.is_complex():
        jac = torch.cat([jac.real, jac.imag], dim=1)
    jac = jac.to(torch.float64)
    if not bool(torch.isfinite(jac).all()):
        d.finite = False
        return
    d.gradient_error = _finite_difference_check(phys, xs, jac, omega if sketch else None, gen)
    s = torch.linalg.svdvals(jac)
    top = s[:, 0]
    eps = torch.finfo(y_t.dtype if not y_t.is_complex() else torch.float32).eps
    bottom = torch.where(s[:, -1] > top * eps * max(jac.shape[1:]), s[:, -1], 0.0)
    cond = torch.where(bottom > 0, top / bottom.clamp_min(1e-300), math.inf)
    d.condition_median = float(cond.median())
    d.condition_max = float(cond.max())
    if not sketch:
        cols = jac.norm(dim=1)  # (n, dx): sensitivity of y to each unknown
        col_max = cols.amax(dim=1)
        col_min = torch.where(cols.amin(dim=1) > col_max * 1e-12, cols.amin(dim=1), 0.0)
        spread = torch.where(col_min > 0, col_max / col_min.clamp_min(1e-300), math.inf)
        d.sensitivity_spread = float(spread.median())
    if n > 1:
        d.across_samples_spread = float(top.max() / top.min()) if top.min() > 0 else math.inf


def _sketch(phys: Physics, xs: torch.Tensor, omega: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(n, dy, k)`` = J Ω by forward mode, else ``(n, k, dx)`` = Ωᵀ-like sketch Ψᵀ J by
    reverse mode with random orthonormal Ψ in y-space; and whether forward mode worked."""
    n, k = xs.shape[0], omega.shape[1]
    tangents = omega.T.to(xs.dtype).reshape(k, 1, *xs.shape[1:]).expand(k, *xs.shape)
    try:
        cols = torch.func.vmap(lambda v: torch.func.jvp(phys, (xs,), (v,))[1])(tangents)
        return cols.reshape(k, n, -1).permute(1, 2, 0), True
    except Exception:  # noqa: BLE001 - no forward mode: sketch from the other side
        z = xs.detach().requires_grad_(True)
        y = phys(z)
        gen = torch.Generator().manual_seed(2)
        psi = torch.linalg.qr(torch.randn(y[0].numel(), k, generator=gen, dtype=torch.float64))[0]
        rows = []
        for i in range(k):
            w = psi[:, i].to(y.dtype).reshape(1, *y.shape[1:]).expand_as(y)
            (g,) = torch.autograd.grad(y, z, w, retain_graph=True)
            rows.append(g.reshape(n, -1))
        return torch.stack(rows, dim=1), False


def _finite_difference_check(
    phys: Physics,
    xs: torch.Tensor,
    jac: torch.Tensor,
    omega: torch.Tensor | None,
    gen: torch.Generator,
) -> float:
    """Median relative difference of ``J v`` and a central difference along a unit ``v``."""
    n = xs.shape[0]
    if omega is None:
        v = torch.randn(n, xs[0].numel(), generator=gen, dtype=torch.float64)
        v = v / v.norm(dim=1, keepdim=True)
        jv = (jac @ v.unsqueeze(-1)).squeeze(-1)
    elif jac.shape[1] == omega.shape[1]:  # reverse-mode sketch (n, k, dx): no J v available
        return math.nan
    else:
        v = omega[:, 0].expand(n, -1)
        jv = jac[:, :, 0]
    dtype = xs.dtype if xs.is_floating_point() else torch.float64
    scale = float(xs.abs().max()) or 1.0
    h = torch.finfo(dtype).eps ** (1 / 3) * scale
    vx = v.to(xs.dtype).reshape(xs.shape)
    with torch.no_grad():
        y0 = phys(xs).reshape(n, -1)
        fd = (phys(xs + h * vx) - phys(xs - h * vx)).reshape(n, -1) / (2 * h)
    if fd.is_complex():
        fd, y0 = torch.cat([fd.real, fd.imag], dim=1), torch.cat([y0.real, y0.imag], dim=1)
    fd = fd.double()
    # round-off of the difference quotient: where J v is ~0 (e.g. at a minimum) it dominates
    noise = 10 * torch.finfo(dtype).eps * y0.double().norm(dim=1) / h
    rel = (fd - jv).norm(dim=1) / (fd.norm(dim=1) + jv.norm(dim=1) + noise).clamp_min(1e-300)
    return float(rel.median())


def _reverse_jacobian(phys: Physics, xs: torch.Tensor) -> torch.Tensor:
    """``(n, dy, dx)`` by reverse mode: one vector-Jacobian product per output entry."""
    n = xs.shape[0]
    z = xs.detach().requires_grad_(True)
    y = phys(z).reshape(n, -1)
    rows = []
    for k in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, k].sum(), z, retain_graph=True)
        rows.append(g.reshape(n, -1))
    return torch.stack(rows, dim=1)


def _multistart(
    d: Diagnosis, loss: Callable, physics: Physics, x: torch.Tensor, y_t: torch.Tensor
) -> None:
    k = d.starts
    if k < 1:
        return
    if d.forward_mode and d.x_size <= SMALL_X:
        solver: Any = GaussNewton(steps=20)
        d.multistart_solver = "GaussNewton(steps=20)"
    else:
        solver = LBFGS(steps=50)
        d.multistart_solver = "LBFGS(steps=50)"
    batch = x.shape[0]
    flat = x.reshape(batch, -1)
    spread = float((flat - flat.mean(0)).norm(dim=1).mean()) or 1.0
    with torch.no_grad():
        l_true = loss(x)
    found, other, flat_, stuck, slow = [], [], [], [], []
    for j in range(1, k + 1):  # one batch per start: batch-bound physics (conditions) stay valid
        start = x.roll(j, dims=0)
        with torch.no_grad():
            level = float(loss(start).median())
        g_start = _grad_norm(loss, start)
        try:
            end = solver(start, y_t, physics)
        except Exception:  # noqa: BLE001 - a solver failure is reported, not fatal
            d.multistart_solver += " (failed)"
            return
        with torch.no_grad():
            l_end = torch.nan_to_num(loss(end), nan=math.inf)
            # halfway back to x: as low as both ends along a flat valley (x not determined by
            # y), higher across the barrier between two separate minima
            l_mid = torch.nan_to_num(loss(0.5 * (end + x)), nan=math.inf)
        near = (end.reshape(batch, -1) - flat).norm(dim=1) <= 0.05 * spread
        converged = l_end <= l_true + 1e-3 * level
        valley = l_mid <= torch.maximum(l_end, l_true) + 1e-3 * level
        # not at the level of x: a local minimum if the gradient vanished, else just slow
        stationary = _grad_norm(loss, end) <= 1e-3 * g_start
        found.append(converged & near)
        other.append(converged & ~near & ~valley)
        flat_.append(converged & ~near & valley)
        stuck.append(~converged & stationary)
        slow.append(~converged & ~stationary)
    d.found_x = float(torch.cat(found).double().mean())
    d.other_solution = float(torch.cat(other).double().mean())
    d.flat_valley = float(torch.cat(flat_).double().mean())
    d.local_minimum = float(torch.cat(stuck).double().mean())
    d.not_converged = float(torch.cat(slow).double().mean())


def _grad_norm(loss: Callable, z: torch.Tensor) -> torch.Tensor:
    """``(B,)`` norm of the objective's gradient at ``z`` (NaN/inf count as large)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss(z).sum(), z)
    norm = g.reshape(z.shape[0], -1).norm(dim=1)
    return torch.nan_to_num(norm, nan=math.inf)


def _timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _costs(
    d: Diagnosis, physics: Physics, x: torch.Tensor, y_t: torch.Tensor, loss: Callable
) -> None:
    with torch.no_grad():
        base = _timed(lambda: run_physics(x, y_t, physics))
    d.physics_ms = 1e3 * base
    start = x.roll(1, dims=0)  # away from the solution, where the solvers have work to do
    solvers: dict[str, Any] = {"adam (backprop)": GradientDescent()}
    if d.forward_mode and d.x_size <= 4 * SMALL_X:  # both form d x d matrices per sample
        solvers["pg-gauss-newton"] = GaussNewton()
        solvers["pg-newton"] = Newton()
    solvers["pg-lbfgs"] = LBFGS()
    for name, solver in solvers.items():
        try:
            seconds = _timed(lambda s=solver: s(start, y_t, physics), repeats=2)
        except Exception:  # noqa: BLE001 - e.g. Newton's forward-over-reverse unsupported
            continue
        d.step_cost[name] = seconds / max(base, 1e-9)


def _recommend(d: Diagnosis) -> None:
    reasons, methods = d.reasons, d.methods
    if not d.finite:
        d.verdict = "fix the physics first"
        reasons.append("the physics or its Jacobian is NaN/inf at the sampled x: clamp or "
                       "reparametrise it where the network may go before training anything")
        return
    methods.append("adam")
    if d.gradient_error is not None and d.gradient_error > 0.1:
        reasons.append(
            f"J v differs from finite differences by {d.gradient_error:.2g} (relative): the "
            "physics is not smoothly differentiable (or very noisy); backprop and every PG "
            "solver use these derivatives, so expect little from curvature-based PG"
        )
    spreads = [v for v in (d.condition_median, d.sensitivity_spread, d.across_samples_spread)
               if v is not None]
    worst = max(spreads, default=1.0)
    multimodal = (d.other_solution or 0.0) + (d.local_minimum or 0.0) > MULTIMODAL
    ill_posed = (d.flat_valley or 0.0) > MULTIMODAL
    if d.domain_solvers:
        methods.extend(m for m in d.domain_solvers if m not in methods)
        reasons.append("a domain solver knows the inverse best: compare "
                       + ", ".join(d.domain_solvers) + " first")
    generic = ["pg-gauss-newton", "pg-newton"] if (d.forward_mode and d.x_size <= SMALL_X) \
        else ["pg-lbfgs"]
    if not d.forward_mode:
        reasons.append("forward-mode AD fails on this physics: Newton and Gauss-Newton cannot "
                       "run; use L-BFGS or a domain solver")
    if worst >= BADLY_SCALED:
        which = _spread_words(d)
        if multimodal or ill_posed:
            kind = "multimodal" if multimodal else "partly undetermined by y (ill-posed)"
            d.verdict = f"PG may help, but the problem is {kind}: measure"
            reasons.append(f"badly scaled ({which}), which PG removes and Adam cannot")
        else:
            d.verdict = "PG likely helps"
            reasons.append(f"badly scaled ({which}) and the solver finds x again from other "
                           "samples' solutions: the setting where PG pays off")
        methods.extend(m for m in generic if m not in methods)
    elif worst >= WELL_SCALED:
        d.verdict = "PG may help a little; weigh its cost"
        reasons.append(f"moderately scaled ({_spread_words(d)}): expect a small gain per "
                       "iteration, so compare per second as well (step ms, cpu ms)")
        methods.extend(m for m in generic[:1] if m not in methods)
    else:
        d.verdict = "PG unlikely to help"
        reasons.append(f"well conditioned (every spread below {WELL_SCALED:g}): Adam through "
                       "the physics sees nearly the solver's direction already, at lower cost")
    if ill_posed:
        reasons.append(
            f"ill-posed: {_pct(d.flat_valley)} of the starts ended at another x that fits y "
            "as well, joined to x by a flat valley (directions the physics does not see, e.g. "
            "damped by diffusion): no method can recover them from y alone; a solver that "
            "regularises them (a domain inverse, damping) decides what the network learns there"
        )
    if multimodal:
        reasons.append(
            f"multimodal: from other samples' solutions a local solver ended in another minimum "
            f"in {_pct(d.other_solution)} and in a local minimum in {_pct(d.local_minimum)} of the "
            "starts; early in training its step can point "
            "to another minimum than the one the network should learn. Prefer a domain solver "
            "that picks the nearest solution, use Physical(..., clip=...), or train a while "
            "with Adam (or supervised) first"
        )
        if d.other_solution and d.other_solution > 0.05:
            reasons.append("several x explain the same y: the x error can stay high for every "
                           "method (report an x_error that identifies equivalent solutions, "
                           "or judge by y)")
    if d.y_size <= SMALL_Y_FOR_HIG and worst >= WELL_SCALED:
        methods.append("hig")
        reasons.append("few outputs per sample: half-inverse gradients (hig) are affordable "
                       "for a small network (its Jacobian is batch × outputs × parameters)")
    ranked = {k: v for k, v in d.step_cost.items() if k != "adam (backprop)"}
    if ranked:
        cheapest = min(ranked, key=ranked.get)
        adam = d.step_cost.get("adam (backprop)", 1.0)
        reasons.append(
            "cost per step vs backprop: " + ", ".join(
                f"{k} {v / adam:.2g}x" for k, v in ranked.items()) + f" (cheapest: {cheapest})"
        )
    if d.condition_max is not None and (math.isinf(d.condition_max) or d.condition_max > 1e8):
        reasons.append("J is (nearly) rank-deficient somewhere: keep the default relative "
                       "damping (GaussNewton 1e-3, Newton 1e-6) or raise it, never 0")
    else:
        reasons.append("damping: the defaults (relative, unit-free) suit this conditioning")


def _spread_words(d: Diagnosis) -> str:
    parts = []
    if d.condition_median is not None:
        parts.append(f"condition number {_fmt(d.condition_median)}")
    if d.sensitivity_spread is not None:
        parts.append(f"unknowns' sensitivities differ {_fmt(d.sensitivity_spread)}x")
    if d.across_samples_spread is not None:
        parts.append(f"across samples {_fmt(d.across_samples_spread)}x")
    return ", ".join(parts)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
