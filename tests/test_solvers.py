"""Inverse solvers: Newton's quadratic step, L-BFGS vs scipy, batching, dtype, bad input."""

import numpy as np
import pytest
import scipy.optimize
import torch
from conftest import nonlinear_physics
from hypothesis import given, settings
from hypothesis import strategies as st

from physgrad.solvers import LBFGS, Analytic, GaussNewton, GradientDescent, Newton, ScipyLBFGSB

DT = torch.float64


def _spd(batch: int, dim: int) -> torch.Tensor:
    a = torch.randn(batch, dim, dim, dtype=DT)
    return a @ a.transpose(1, 2) + 0.5 * torch.eye(dim, dtype=DT)


@settings(max_examples=15, deadline=None)
@given(dim=st.integers(1, 5), batch=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_newton_solves_a_quadratic_in_one_step(dim, batch, seed):
    torch.manual_seed(seed)
    a = _spd(batch, dim)
    b = torch.randn(batch, dim, dtype=DT)
    x_star = torch.linalg.solve(a, b)
    # objective 1/2 x^T A x - b^T x through a linear "physics" y = x
    def objective(y, _):
        return 0.5 * torch.einsum("bi,bij,bj->b", y, a, y) - (b * y).sum(1)

    x0 = torch.randn(batch, dim, dtype=DT)
    solver = Newton(damping=0.0, objective=objective)
    x1 = solver(x0, torch.zeros(batch, dim, dtype=DT), lambda x: x)
    torch.testing.assert_close(x1, x_star, rtol=1e-8, atol=1e-8)


def test_gauss_newton_solves_linear_least_squares_in_one_step():
    m = torch.randn(3, 5, 4, dtype=DT)
    y_target = torch.randn(3, 5, dtype=DT)
    physics = lambda x: torch.einsum("bij,bj->bi", m, x)  # noqa: E731
    x1 = GaussNewton(damping=0.0)(torch.randn(3, 4, dtype=DT), y_target, physics)
    expected = torch.linalg.lstsq(m, y_target.unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close(x1, expected, rtol=1e-8, atol=1e-8)


def test_newton_on_singular_and_indefinite_hessians_stays_finite_and_descends():
    # objective = sin(x1) + 0 * x2 : Hessian singular in x2, indefinite where sin'' > 0
    objective = lambda y, _: torch.sin(y[:, 0]) + 0.0 * y[:, 1]  # noqa: E731
    x0 = torch.tensor([[0.0, 1.0], [1.0, 2.0], [-2.0, 0.0], [np.pi / 2, 0.0]], dtype=DT)
    x1 = Newton(objective=objective)(x0, torch.zeros(4, 2, dtype=DT), lambda x: x)
    assert torch.isfinite(x1).all()
    assert torch.all(torch.sin(x1[:, 0]) <= torch.sin(x0[:, 0]) + 1e-12)
    torch.testing.assert_close(x1[:, 1], x0[:, 1])  # zero curvature, zero gradient: no step


def _rosenbrock_physics(x):
    # residuals r = (10 (x2 - x1^2), 1 - x1): 1/2 ||r||^2 is the Rosenbrock function / 2
    return torch.stack([10 * (x[:, 1] - x[:, 0] ** 2), 1 - x[:, 0]], dim=1)


def test_lbfgs_matches_scipy_lbfgsb_on_a_batch_of_rosenbrock_problems():
    torch.manual_seed(3)
    x0 = torch.rand(16, 2, dtype=DT) * 4 - 2
    y_target = torch.zeros(16, 2, dtype=DT)
    ours = LBFGS(steps=200)(x0, y_target, _rosenbrock_physics)

    def fun(z):
        r = np.array([10 * (z[1] - z[0] ** 2), 1 - z[0]])
        jac = np.array([[-20 * z[0], 10.0], [-1.0, 0.0]])
        return 0.5 * r @ r, jac.T @ r

    for b in range(16):
        ref = scipy.optimize.minimize(fun, x0[b].numpy(), jac=True, method="L-BFGS-B",
                                      options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-12})
        np.testing.assert_allclose(ours[b].numpy(), ref.x, atol=1e-5)
    torch.testing.assert_close(ours, torch.ones_like(ours), atol=1e-6, rtol=0)


def test_scipy_reference_solver_reaches_the_rosenbrock_minimum():
    x0 = torch.tensor([[-1.2, 1.0], [0.5, -0.5]], dtype=DT)
    out = ScipyLBFGSB(steps=200)(x0, torch.zeros(2, 2, dtype=DT), _rosenbrock_physics)
    torch.testing.assert_close(out, torch.ones_like(out), atol=1e-5, rtol=0)


ALL_SOLVERS = [
    GradientDescent(lr=0.05, steps=3),
    Newton(steps=2, damping=1e-3),
    GaussNewton(steps=2),
    LBFGS(steps=5),
    ScipyLBFGSB(steps=5),
]


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_solvers_are_batched_keep_dtype_and_decrease_the_objective(solver, dtype):
    x0 = torch.randn(6, 3, dtype=dtype) * 0.5
    y_target = nonlinear_physics(torch.randn(6, 3, dtype=dtype) * 0.5)
    x1 = solver(x0, y_target, nonlinear_physics)
    assert x1.shape == x0.shape and x1.dtype == dtype and x1.device == x0.device
    before = 0.5 * ((nonlinear_physics(x0) - y_target) ** 2).sum(1)
    after = 0.5 * ((nonlinear_physics(x1) - y_target) ** 2).sum(1)
    assert torch.all(after <= before + 1e-6)
    # batching: solving each sample alone gives the same answer as solving the batch
    single = solver(x0[2:3], y_target[2:3], nonlinear_physics)
    torch.testing.assert_close(single, x1[2:3], rtol=1e-4, atol=1e-5)


def test_solvers_do_not_loop_over_the_batch():
    """A batched solver calls the physics a number of times independent of the batch size.

    Every sample of both batches is the same problem, so a solver that only vectorises over
    the batch does the same work for 2 samples as for 32 -- including L-BFGS, whose early
    exits and line searches depend on the samples' values, not on how many there are.
    """
    calls = {"n": 0}

    def counting(x):
        calls["n"] += 1
        return nonlinear_physics(x)

    x0, y_target = torch.randn(1, 3, dtype=DT), torch.randn(1, 4, dtype=DT)
    for solver in ALL_SOLVERS[:4]:
        counts = []
        for batch in (2, 32):
            calls["n"] = 0
            solver(x0.expand(batch, 3).clone(), y_target.expand(batch, 4).clone(), counting)
            counts.append(calls["n"])
        assert counts[0] == counts[1], (solver, counts)


def test_lbfgs_physics_calls_are_bounded_independently_of_the_batch():
    """With different samples L-BFGS stops when the slowest sample does, so its call count
    may change with the batch, but never beyond one gradient plus, per iteration, the line
    search's trials and one gradient -- a bound that does not grow with the batch size."""
    calls = {"n": 0}

    def counting(x):
        calls["n"] += 1
        return nonlinear_physics(x)

    solver = LBFGS(steps=5, max_line_search=4)
    bound = 1 + solver.steps * (solver.max_line_search + 1)
    for batch in (2, 32, 256):
        calls["n"] = 0
        solver(torch.randn(batch, 3, dtype=DT), torch.randn(batch, 4, dtype=DT), counting)
        assert 1 < calls["n"] <= bound, (batch, calls["n"], bound)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GradientDescent(lr=-1.0), "lr must be > 0"),
        (lambda: GradientDescent(lr=0.1, steps=0), "steps must be >= 1"),
        (lambda: Newton(steps=-2), "steps must be >= 1"),
        (lambda: Newton(damping=-1.0), "damping must be >= 0"),
        (lambda: GaussNewton(damping=float("nan")), "damping must be finite"),
        (lambda: LBFGS(steps=0), "steps must be >= 1"),
        (lambda: LBFGS(history=0), "history must be >= 1"),
        (lambda: ScipyLBFGSB(steps=0), "steps must be >= 1"),
        (lambda: GradientDescent(lr="big"), "lr must be a number"),
    ],
)
def test_bad_solver_settings_are_named(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


def test_solver_rejects_mismatched_batches_and_nonfinite_start():
    with pytest.raises(ValueError, match="batch sizes differ"):
        Newton()(torch.zeros(2, 3), torch.zeros(3, 4), nonlinear_physics)
    with pytest.raises(ValueError, match="x0 contains 1 non-finite"):
        Newton()(torch.tensor([[0.0, float("inf"), 0.0]]), torch.zeros(1, 4), nonlinear_physics)
    with pytest.raises(ValueError, match="returned"):
        Analytic(lambda x0, y: x0[:1])(torch.zeros(2, 3), torch.zeros(2, 4), nonlinear_physics)
