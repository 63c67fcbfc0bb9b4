"""Solvers as values: frozen dataclasses with validated fields, complete reprs, and iterates.

Every :class:`~physgrad.solvers.base.Solver` in the package is a frozen dataclass whose fields
are its settings; its ``repr`` names every field; bad settings raise one-line errors naming
the value; ``iterates`` yields ``x0`` and the point after each step, the last of which is
the solver's answer. The single-problem curves (Fig. 4b/5b/6b) now come from those iterates:
checked here against the hand-written loops they replaced.
"""

import dataclasses
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from conftest import nonlinear_physics
from hypothesis import given, settings
from hypothesis import strategies as st

import physgrad.problems.exp as exp_problem
import physgrad.problems.fluid as fluid_problem
import physgrad.problems.heat as heat_problem
import physgrad.problems.poisson as poisson_problem
import physgrad.problems.sine as sine_problem
import physgrad.problems.sine2d as sine2d_problem
from physgrad.core import run_physics
from physgrad.experiments.single_problem import single_problem_curves
from physgrad.physics.fluid import FluidSimulator
from physgrad.solvers import (
    LBFGS,
    Adam,
    Analytic,
    GaussNewton,
    GradientDescent,
    Newton,
    ScipyLBFGSB,
)
from physgrad.solvers.base import Solver

DT = torch.float64
A = torch.tensor([[1.0], [2.0]], dtype=DT)

FACTORIES = {
    GradientDescent: lambda: GradientDescent(lr=0.1, steps=3),
    Adam: lambda: Adam(0.05, steps=4),
    Newton: lambda: Newton(steps=2),
    GaussNewton: lambda: GaussNewton(steps=2, relative=False, halvings=3),
    LBFGS: lambda: LBFGS(steps=6),
    ScipyLBFGSB: lambda: ScipyLBFGSB(steps=6),
    Analytic: lambda: Analytic(lambda x0, y: 0.5 * x0, name="half"),
    poisson_problem.PoissonInverse: lambda: poisson_problem.PoissonInverse(steps=2),
    heat_problem.HeatInverse: lambda: heat_problem.HeatInverse(steps=2),
    exp_problem.ExpNewton: lambda: exp_problem.ExpNewton(0.1),
    sine2d_problem.LimitedNewton: lambda: sine2d_problem.LimitedNewton(0.2, steps=2),
    sine2d_problem.Sine2DNewton: lambda: sine2d_problem.Sine2DNewton(10.0, 45.0, steps=2),
    sine_problem.InverseGradient: lambda: sine_problem.InverseGradient(A),
    sine_problem.ClippedGradientStep: lambda: sine_problem.ClippedGradientStep(A, clip=0.5),
    fluid_problem.ReverseSimEstimator: lambda: fluid_problem.ReverseSimEstimator(
        torch.zeros(2, *FluidSimulator().domain.shape)
    ),
}


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("physgrad."):
            found.add(sub)
        found |= _subclasses(sub)
    return found


def test_every_solver_of_the_package_is_covered_here():
    assert _subclasses(Solver) == set(FACTORIES)


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda cls: cls.__name__)
def test_solvers_are_frozen_dataclasses_with_complete_reprs(cls):
    solver = FACTORIES[cls]()
    assert dataclasses.is_dataclass(solver) and cls.__dataclass_params__.frozen
    fields = dataclasses.fields(solver)
    assert fields, cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(solver, fields[-1].name, getattr(solver, fields[-1].name))
    text = repr(solver)
    assert text.startswith(f"{cls.__name__}(") and "0x" not in text  # no memory addresses
    shown = [f.name for f in fields if f.repr]
    assert shown == [f.name for f in fields if f.name != "forward_cache"]  # internal plumbing
    for name in shown:
        assert f"{name}=" in text, (name, text)
    if all(f.compare for f in fields):  # tensor fields are left out of == and hash
        twin = dataclasses.replace(solver)
        assert twin == solver and hash(twin) == hash(solver) and twin is not solver


def test_reprs_show_every_setting_by_value():
    assert repr(Newton()) == ("Newton(steps=1, damping=1e-06, lr=1.0, objective=squared_error, "
                              "relative=True, halvings=10)")
    assert repr(ScipyLBFGSB(steps=2)) == ("ScipyLBFGSB(steps=2, history=10, ftol=1e-12, "
                                          "gtol=1e-10, objective=squared_error)")
    clipped = FACTORIES[sine_problem.ClippedGradientStep]()
    assert "a=<tensor (2, 1) float64>, clip=0.5" in repr(clipped)
    assert "fn=<lambda>, name='half'" in repr(FACTORIES[Analytic]())
    assert "dead_zone=(0.5, 0.68)" in repr(heat_problem.HeatInverse())


def test_replace_makes_a_checked_variant():
    solver = GaussNewton(damping=1e-4)
    assert dataclasses.replace(solver, steps=3) == GaussNewton(steps=3, damping=1e-4)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        dataclasses.replace(solver, steps=0)


def test_a_users_plain_subclass_still_works():
    class Halve(Solver):
        def _solve(self, x0, y_target, physics):
            return 0.5 * x0

    x0 = torch.ones(2, 3)
    assert [x.tolist() for x in Halve().iterates(x0, x0, nonlinear_physics)] == [
        x0.tolist(), (0.5 * x0).tolist()]
    assert "Halve object" in repr(Halve())
    with pytest.raises(NotImplementedError, match="Bare defines neither _iterates nor _solve"):
        type("Bare", (Solver,), {})()(x0, x0, nonlinear_physics)


def test_solvers_work_as_dict_keys_and_compare_by_settings():
    cache = {GaussNewton(): "a", GaussNewton(steps=2): "b"}
    assert cache[GaussNewton(steps=1)] == "a"
    assert Newton(damping=0.0) != Newton() and GradientDescent(lr=1) == GradientDescent(lr=1.0)
    assert sine2d_problem.Sine2DNewton(1.0, 0.0) != sine2d_problem.LimitedNewton()


# ---------------------------------------------------------------- validation


STEP_SOLVERS = [GradientDescent, Newton, GaussNewton, LBFGS, ScipyLBFGSB,
                poisson_problem.PoissonInverse, heat_problem.HeatInverse]


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(max_value=0), which=st.sampled_from(STEP_SOLVERS))
def test_steps_below_one_are_named(steps, which):
    with pytest.raises(ValueError, match=f"^steps must be >= 1, got {steps}$"):
        which(steps=steps)


@settings(max_examples=30, deadline=None)
@given(
    value=st.one_of(st.floats(max_value=0.0), st.floats(allow_nan=True).filter(math.isnan),
                    st.just(math.inf)),
    which=st.sampled_from([GradientDescent, Newton, GaussNewton, Adam,
                           poisson_problem.PoissonInverse]),
)
def test_bad_learning_rates_are_named(value, which):
    with pytest.raises(ValueError, match=r"^lr must be (> 0|finite), got "):
        which(lr=value)


@settings(max_examples=30, deadline=None)
@given(value=st.one_of(st.booleans(), st.text(max_size=3), st.floats(0.5, 4.0)),
       which=st.sampled_from(STEP_SOLVERS))
def test_steps_of_the_wrong_type_are_named(value, which):
    with pytest.raises(TypeError, match="^steps must be an int, got "):
        which(steps=value)


@settings(max_examples=30, deadline=None)
@given(lr=st.integers(1, 10**6), steps=st.integers(1, 10**6))
def test_valid_settings_are_stored_converted(lr, steps):
    solver = GradientDescent(lr=lr, steps=steps)
    assert solver.lr == float(lr) and isinstance(solver.lr, float) and solver.steps == steps
    assert f"lr={float(lr)!r}, steps={steps}" in repr(solver)


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: Newton(halvings=-1), ValueError, "halvings must be >= 0, got -1"),
        (lambda: GaussNewton(halvings=1.0), TypeError, "halvings must be an int, got 1.0"),
        (lambda: LBFGS(max_line_search=0), ValueError, "max_line_search must be >= 1, got 0"),
        (lambda: ScipyLBFGSB(ftol=-1.0), ValueError, "ftol must be >= 0, got -1.0"),
        (lambda: Analytic(3), TypeError, "needs a callable fn"),
        (lambda: heat_problem.HeatInverse(abs_noise=-1.0), ValueError, "abs_noise must be >= 0"),
        (lambda: exp_problem.ExpNewton(0.0), ValueError, "max_step must be > 0, got 0.0"),
        (lambda: sine2d_problem.LimitedNewton(steps=0), ValueError, "steps must be an int >= 1"),
        (lambda: sine2d_problem.Sine2DNewton(0.0, 45.0), ValueError, "xi must be > 0, got 0.0"),
        (lambda: sine_problem.ClippedGradientStep(A, clip=0.0), ValueError, "clip must be > 0"),
        (lambda: sine_problem.InverseGradient([1.0]), TypeError, "a must be a torch.Tensor"),
        (lambda: fluid_problem.ReverseSimEstimator(torch.zeros(2, 3, 3)), ValueError,
         "marker0 grid"),
    ],
)
def test_bad_settings_of_every_solver_are_named(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


# ---------------------------------------------------------------- iterates


def _case(cls):
    """``(solver, x0, y_target, physics)``: a ``cls`` and a problem it accepts (float64 but for
    the fluid)."""
    return _bound(cls, FACTORIES[cls](), *_inputs(cls))


def _bound(cls, solver, x0, y_target, physics, batch=None):
    if cls is fluid_problem.ReverseSimEstimator:  # bound to the batch's initial markers
        solver = fluid_problem.ReverseSimEstimator(batch.condition)
    return solver, x0, y_target, physics


def _inputs(cls):
    gen = torch.Generator().manual_seed(7)
    if cls in (poisson_problem.PoissonInverse, heat_problem.HeatInverse):
        problem = (poisson_problem.PoissonProblem(shape=(12, 10), dtype=DT)
                   if cls is poisson_problem.PoissonInverse
                   else heat_problem.HeatProblem(shape=(16, 16)))
        batch = problem.sample(2, gen)
        return torch.zeros_like(batch.x_true), batch.y_target, problem.physics(batch)
    if cls is exp_problem.ExpNewton:
        x0 = torch.tensor([[-3.0], [0.5]], dtype=DT)
        return x0, torch.full_like(x0, 0.5), torch.exp
    if cls in (sine2d_problem.LimitedNewton, sine2d_problem.Sine2DNewton):
        problem = sine2d_problem.Sine2DProblem()
        batch = problem.sample(2, gen)
        return torch.randn(2, 2, generator=gen, dtype=DT), batch.y_target, problem.forward
    if cls in (sine_problem.InverseGradient, sine_problem.ClippedGradientStep):
        x0 = torch.tensor([[0.3], [0.7]], dtype=DT)
        return x0, torch.full_like(x0, -1.0), lambda x: torch.sin(A / x)
    if cls is fluid_problem.ReverseSimEstimator:
        problem = fluid_problem.FluidProblem()
        batch = problem.sample(2, gen)
        return 0.5 * batch.x_true, batch.y_target, problem.physics(batch), batch
    if cls is Analytic:
        x0 = torch.randn(3, 3, generator=gen, dtype=DT)
        return x0, torch.zeros(3, 4, dtype=DT), nonlinear_physics
    x0 = torch.randn(3, 3, generator=gen, dtype=DT) * 0.5
    y_target = nonlinear_physics(torch.randn(3, 3, generator=gen, dtype=DT) * 0.5)
    return x0, y_target, nonlinear_physics


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda cls: cls.__name__)
def test_the_last_iterate_is_the_answer(cls):
    solver, x0, y_target, physics = _case(cls)
    trace = list(solver.iterates(x0, y_target, physics))
    assert torch.equal(trace[0], x0)
    assert torch.equal(trace[-1], solver(x0, y_target, physics))
    steps = getattr(solver, "steps", 1)
    assert len(trace) == steps + 1 or (cls is LBFGS and len(trace) <= steps + 1)
    assert all(x.shape == x0.shape and x.dtype == x0.dtype and not x.requires_grad
               for x in trace)


def test_iterates_are_lazy_keep_the_callers_grad_mode_and_check_inputs_at_once():
    calls = []

    def physics(x):
        calls.append(torch.is_grad_enabled())
        return nonlinear_physics(x)

    _, x0, y_target, _ = _case(GradientDescent)
    bad = x0.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="x0 contains 1 non-finite"):
        GradientDescent().iterates(bad, y_target, physics)  # raised before the first next()
    steps = GradientDescent(lr=0.1, steps=1000).iterates(x0, y_target, physics)
    with torch.no_grad():
        for _ in range(3):
            next(steps)
            assert not torch.is_grad_enabled()  # the solver's enable_grad does not leak
    assert calls == [True, True]  # two steps taken (x0 needs none), each with autograd on
    solver = poisson_problem.PoissonInverse(steps=3)  # steps under no_grad inside
    _, x0, y_target, physics = _case(poisson_problem.PoissonInverse)
    for _ in solver.iterates(x0, y_target, physics):
        assert torch.is_grad_enabled()


def test_half_precision_iterates_come_back_in_half():
    _, x0, y_target, physics = _case(GaussNewton)
    solver = GaussNewton(steps=2)
    trace = list(solver.iterates(x0.half(), y_target.half(), physics))
    assert [x.dtype for x in trace] == [torch.float16] * 3
    assert torch.equal(trace[-1], solver(x0.half(), y_target.half(), physics))


def test_lbfgs_iterates_stop_when_every_sample_has_converged():
    x0 = torch.tensor([[0.5, -0.2, 0.1]], dtype=DT)
    scales = torch.tensor([1.0, 3.0, 10.0], dtype=DT)
    trace = list(LBFGS(steps=500).iterates(x0, torch.zeros(1, 3, dtype=DT), lambda x: scales * x))
    assert 2 < len(trace) < 50  # a quadratic: converged long before 500 steps
    assert float(trace[-1].abs().max()) < 1e-8
    at_minimum = torch.zeros(1, 3, dtype=DT)
    answer = LBFGS()(at_minimum, at_minimum, lambda x: scales * x)  # converged at the start
    assert torch.equal(answer, at_minimum) and answer.data_ptr() != at_minimum.data_ptr()


def test_adam_first_step_is_lr_along_minus_the_gradient_sign():
    """Bias-corrected Adam moves every component by ``lr`` (up to eps) on its first step."""
    x0 = torch.tensor([[0.3, -2.0, 5.0], [0.5, 1.0, -1.0]], dtype=DT)
    y_target = torch.zeros_like(x0)
    x1 = Adam(lr=0.01, steps=1)(x0, y_target, lambda x: x**3)  # |dL/dx| = 3 |x|^5 >> eps
    torch.testing.assert_close(x1, x0 - 0.01 * torch.sign(x0), rtol=0, atol=1e-7)


# ---------------------------------------------------------------- replaced loops


def _old_gd(problem, batch, x0, n, lr):
    physics, xs = problem.physics(batch), [x0]
    for _ in range(n):
        x = xs[-1].detach().requires_grad_(True)
        loss = problem.objective(run_physics(x, batch.y_target, physics), batch.y_target)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        xs.append((xs[-1] - lr * grad).detach())
    return xs


def _old_adam(problem, batch, x0, n, lr):
    physics = problem.physics(batch)
    x = x0.clone().requires_grad_(True)
    opt, xs = torch.optim.Adam([x], lr=lr), [x0]
    for _ in range(n):
        z = x.detach().requires_grad_(True)
        loss = problem.objective(run_physics(z, batch.y_target, physics), batch.y_target)
        (grad,) = torch.autograd.grad(loss.sum(), z)
        opt.zero_grad(set_to_none=True)
        x.grad = grad
        opt.step()
        xs.append(x.detach().clone())
    return xs


def _old_lbfgsb(problem, batch, x0, n, history):
    physics, per_example = problem.physics(batch), []
    for b in range(x0.shape[0]):
        y_b = batch.y_target[b : b + 1]

        def fun(z, y_b=y_b):
            x = torch.from_numpy(z).reshape(1, *x0.shape[1:]).requires_grad_(True)
            loss = problem.objective(run_physics(x, y_b, physics), y_b)
            (grad,) = torch.autograd.grad(loss.sum(), x)
            return float(loss.detach()[0]), grad.reshape(-1).numpy()

        trace = [x0[b].reshape(-1).numpy().copy()]
        scipy.optimize.minimize(fun, trace[0], jac=True, method="L-BFGS-B",
                                callback=lambda xk, trace=trace: trace.append(np.array(xk)),
                                options={"maxiter": n, "maxcor": history, "ftol": 0.0,
                                         "gtol": 0.0})
        per_example.append(trace + [trace[-1]] * (n + 1 - len(trace)))
    steps = zip(*per_example, strict=True)
    return [torch.from_numpy(np.stack(step)).reshape(x0.shape) for step in steps]


def test_single_problem_curves_equal_the_hand_written_loops_they_replaced():
    problem = poisson_problem.PoissonProblem(shape=(12, 10), dtype=DT)
    batch = problem.sample(2, torch.Generator().manual_seed(3))
    n, gd_lr, adam_lr = 6, 1e-3, 0.05
    curves = single_problem_curves(problem, n, gd_lr=gd_lr, adam_lr=adam_lr, batch=batch)
    x0 = torch.zeros_like(batch.x_true)
    old = {"GD": _old_gd(problem, batch, x0, n, gd_lr),
           "Adam": _old_adam(problem, batch, x0, n, adam_lr),
           "L-BFGS-B": _old_lbfgsb(problem, batch, x0, n, 10)}
    for name, xs in old.items():
        assert torch.equal(curves.final[name], xs[-1]), name
        x_l1 = [float((x - batch.x_true).abs().sum(dim=(1, 2)).mean()) for x in xs]
        assert curves.x_l1[name] == x_l1, name  # exactly: the same arithmetic
    assert curves.x_l1["L-BFGS-B"][-1] < curves.x_l1["GD"][-1]  # the loops did move


def test_fluid_single_problem_gd_equals_the_hand_written_loop():
    from physgrad.experiments.fluid_figures import drift_guess, single_problem_fluid

    result = single_problem_fluid(2, examples=1)
    problem = fluid_problem.FluidProblem()  # the fluid experiment's (unconfigured)
    batch = problem.sample(1, torch.Generator().manual_seed(0))
    physics = problem.physics(batch)
    x, objective = drift_guess(batch, problem), []
    for i in range(3):
        objective.append(float(problem.metrics(x, batch)["objective"].mean()))
        if i < 2:
            x.requires_grad_(True)
            loss = problem.objective(physics(x), batch.y_target).sum()
            (grad,) = torch.autograd.grad(loss, x)
            x = (x - 1.0 * grad).detach()
    assert result["objective"]["GD"] == objective
