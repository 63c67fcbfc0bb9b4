"""The default solvers do not care about units: rescaling y and x rescales their answer.

For ``P_st(x) = t · P(x / s)`` (y in units ``t`` times smaller, x in units ``s`` times smaller)
the solution of ``P_st(x) = t y*`` is ``s`` times that of ``P(x) = y*``. A scale-free solver
started at ``s x0`` must therefore return exactly ``s`` times its answer from ``x0``: checked
to round-off in float64, for scalar ``s`` and ``t`` and (Gauss-Newton, L-BFGS' per-sample
quantities being scalar) per-component ``s`` where the method promises it. The slow test
trains a network on a badly scaled map in three systems of units.
"""

import math
import statistics

import pytest
import torch
from conftest import nonlinear_physics

from physgrad.core import physical_gradient_loss
from physgrad.solvers import LBFGS, GaussNewton, GradientDescent, Newton

DT = torch.float64
FACTORS = [(1e-2, 1e2), (1e2, 1e-2), (1e2, 1e2), (1e-2, 1e-2), (3.0, 0.25)]


def _rescaled(physics, s, t):
    return lambda x: t * physics(x / s)


def _problem(seed: int, batch: int = 8):
    gen = torch.Generator().manual_seed(seed)
    x_true = torch.rand(batch, 3, generator=gen, dtype=DT) - 0.5
    x0 = x_true + 0.3 * torch.randn(batch, 3, generator=gen, dtype=DT)
    return x0, nonlinear_physics(x_true)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("s", "t"), FACTORS)
@pytest.mark.parametrize(
    "solver", [GaussNewton(), GaussNewton(steps=3), Newton(), Newton(steps=3), LBFGS(steps=12)],
    ids=repr,
)
def test_default_solvers_are_equivariant_under_a_change_of_units(solver, s, t, seed):
    x0, y_target = _problem(seed)
    reference = solver(x0, y_target, nonlinear_physics)
    assert not torch.allclose(reference, x0)  # the solver moved
    scaled = solver(s * x0, t * y_target, _rescaled(nonlinear_physics, s, t))
    torch.testing.assert_close(scaled, s * reference, rtol=1e-9, atol=1e-12 * s)


@pytest.mark.parametrize("seed", [0, 1])
def test_gauss_newton_is_equivariant_per_component_of_x(seed):
    """Marquardt scaling: each component of x may have its own unit."""
    x0, y_target = _problem(seed)
    s = torch.tensor([1e-3, 1.0, 1e3], dtype=DT)
    solver = GaussNewton(steps=2)
    reference = solver(x0, y_target, nonlinear_physics)
    scaled = solver(s * x0, 1e2 * y_target, _rescaled(nonlinear_physics, s, 1e2))
    torch.testing.assert_close(scaled, s * reference, rtol=1e-9, atol=0.0)


def test_absolute_damping_is_not_scale_free_but_relative_is():
    """The check above is not vacuous: the old absolute damping fails it."""
    x0, y_target = _problem(0)
    args = (1e-2 * x0, 1e2 * y_target, _rescaled(nonlinear_physics, 1e-2, 1e2))
    for solver in (GaussNewton(damping=1e-3, relative=False), Newton(damping=1e-1, relative=False)):
        reference = solver(x0, y_target, nonlinear_physics)
        assert not torch.allclose(solver(*args), 1e-2 * reference, rtol=1e-3)


def test_gradient_descent_with_unit_step_is_still_backprop():
    """Theorem 1 holds exactly: GD(lr=1, steps=1) gives the plain gradient (it is the one
    solver whose step is in the units of the gradient, by design)."""
    x = (torch.randn(5, 3, dtype=DT) * 0.5).requires_grad_(True)
    y_target = nonlinear_physics(torch.randn(5, 3, dtype=DT) * 0.5)
    (pg,) = torch.autograd.grad(
        physical_gradient_loss(x, y_target, nonlinear_physics, GradientDescent(lr=1.0, steps=1)),
        x,
    )
    plain = 0.5 * ((nonlinear_physics(x) - y_target) ** 2).sum(1).mean()
    (bp,) = torch.autograd.grad(plain, x)
    torch.testing.assert_close(pg, bp, rtol=0, atol=1e-15)


# -- training in other units ----------------------------------------------------------------


def _badly_scaled(x: torch.Tensor) -> torch.Tensor:
    """(B, 2) -> (B, 2), one solution: sensitivities differ by ~1e3 between components and
    across samples (a from 10a + a³, then b from the weak cubic)."""
    a, b = x[:, 0], x[:, 1]
    return torch.stack([10 * a + a**3, 1e-2 * b**3 + a], dim=1)


def _train(solver, s: float, t: float, seed: int, iterations: int = 300) -> float:
    """x-error (in units of s) of a network trained with ``solver`` on the map in units (s, t).

    The network knows the units (input / t, output * s), as a user's network with input and
    output normalisation would; everything else is the default solver.
    """
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 2),
    ).to(DT)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    physics = _rescaled(_badly_scaled, s, t)
    gen = torch.Generator().manual_seed(seed)
    scale_y = torch.tensor([10.0, 1.0], dtype=DT)
    for _ in range(iterations):
        x_true = torch.rand(32, 2, generator=gen, dtype=DT) * 1.5 + 0.25
        y = _badly_scaled(x_true) * t
        x = s * net(y / (t * scale_y))
        loss = physical_gradient_loss(x, y, physics, solver)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen = torch.Generator().manual_seed(10_000)
    x_true = torch.rand(256, 2, generator=gen, dtype=DT) * 1.5 + 0.25
    with torch.no_grad():
        x = s * net(_badly_scaled(x_true) / scale_y)
    return float((x / s - x_true).abs().mean())


@pytest.mark.slow
@pytest.mark.parametrize("solver", [GaussNewton(), Newton(), LBFGS(steps=8)], ids=repr)
def test_training_in_other_units_reaches_the_same_x_error(solver):
    errors = {}
    for s, t in [(1.0, 1.0), (1e-2, 1e2), (1e2, 1e-2)]:
        errors[s, t] = statistics.median(_train(solver, s, t, seed) for seed in (0, 1, 2))
    base = errors[1.0, 1.0]
    assert base < 0.3, errors  # learned something: predicting the mean x scores 0.375
    for err in errors.values():
        assert math.isfinite(err) and err / base < 2 and base / err < 2, errors
