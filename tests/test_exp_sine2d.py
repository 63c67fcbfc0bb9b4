"""The published paper's small experiments: y = exp(x) and the ill-conditioned 2D sine."""

import json
import math

import pytest
import torch

from physgrad.experiments import compare, get_experiment
from physgrad.experiments.exp import predictions
from physgrad.experiments.sine2d import L1Physical, final_x_dist, make_experiment, sweep
from physgrad.problems.base import Batch
from physgrad.problems.exp import ExpNewton, ExpProblem, exp_newton_step, sign_update
from physgrad.problems.sine2d import (
    LimitedNewton,
    Sine2DNewton,
    Sine2DProblem,
    closest_solution,
    newton_minimization,
    sine2d_physics,
    transform,
    untransform,
)
from physgrad.report.figures import render
from physgrad.solvers import Newton

DT = torch.float64


# -- exp -----------------------------------------------------------------------------------
def test_exp_data_and_physics():
    problem = ExpProblem()
    batch = problem.sample(1000, torch.Generator().manual_seed(0))
    assert batch.y_target.shape == batch.x_true.shape == (1000, 1)
    assert batch.x_true.dtype == DT
    assert bool((batch.x_true > -12).all()) and bool((batch.x_true <= 0).all())
    assert batch.x_true.min() < -11.9 and batch.x_true.max() > -0.1
    torch.testing.assert_close(problem.physics(batch)(batch.x_true), batch.y_target)
    m = problem.metrics(batch.x_true, batch)
    assert float(m["x_l1"].max()) == 0.0 and float(m["y_l2"].max()) == 0.0


def test_exp_newton_matches_generic_newton_and_clips():
    x0 = -12 * torch.rand(64, 1, dtype=DT)
    y = torch.exp(-12 * torch.rand(64, 1, dtype=DT))
    unclipped = ExpNewton(math.inf)(x0, y, torch.exp)
    plain = Newton(damping=0.0, halvings=0)  # the undamped step without backtracking
    torch.testing.assert_close(unclipped, plain(x0, y, torch.exp), rtol=1e-10, atol=1e-12)
    step = ExpNewton(0.1)(x0, y, torch.exp) - x0
    assert float(step.abs().max()) <= 0.1 + 1e-15
    # always downhill: the step has the sign of -(e^x - y) e^x, i.e. toward log(y)
    assert bool((torch.sign(step) == torch.sign(torch.log(y) - x0)).all())
    # H = 2e^{2x} - y e^x = 0 at x = log(y/2): no step instead of inf
    y0 = torch.tensor([[0.5]], dtype=DT)
    assert float(exp_newton_step(torch.log(y0 / 2), y0, math.inf)) == 0.0


def test_sign_update_and_exp_solvers():
    x0 = torch.tensor([[-1.0], [-5.0], [-3.0]], dtype=DT)
    x_true = torch.tensor([[-3.0], [-4.5], [-3.0]], dtype=DT)
    torch.testing.assert_close(sign_update(x0, x_true), torch.tensor([[-2.0], [-4.0], [-3.0]],
                                                                     dtype=DT))
    problem = ExpProblem()
    batch = Batch(torch.exp(x_true), x_true)
    solvers = problem.solvers(batch)
    assert set(solvers) == {"newton", "newton-unclipped", "sign"}
    torch.testing.assert_close(solvers["sign"](x0, batch.y_target, torch.exp),
                               sign_update(x0, x_true))
    assert "sign" not in problem.solvers(Batch(torch.exp(x_true)))


# -- sine2d physics ------------------------------------------------------------------------
def test_sine2d_physics_values():
    x = torch.tensor([[math.pi / 20, 0.05]], dtype=DT)
    torch.testing.assert_close(sine2d_physics(x, xi=1.0, angle=0.0),
                               torch.tensor([[1.0, 0.5]], dtype=DT))
    # xi stretches v2 by xi and shrinks v1 by 1/xi
    x = torch.tensor([[math.pi / 2 * 4 / 10, 0.01]], dtype=DT)
    torch.testing.assert_close(sine2d_physics(x, xi=4.0, angle=0.0),
                               torch.tensor([[1.0, 0.4]], dtype=DT))
    # counter-clockwise rotation: (1, 0) -> (0, 1) at 90 degrees
    torch.testing.assert_close(sine2d_physics(torch.tensor([[1.0, 0.0]], dtype=DT), 2.0, 90.0),
                               torch.tensor([[0.0, 20.0]], dtype=DT), atol=1e-12, rtol=0)
    v = transform(torch.tensor([[1.0, 0.0]], dtype=DT), 1.0, 45.0)
    torch.testing.assert_close(v, torch.tensor([[10 / math.sqrt(2), 10 / math.sqrt(2)]],
                                               dtype=DT))
    x = torch.randn(10, 2, dtype=DT)
    torch.testing.assert_close(untransform(transform(x, 7.0, 23.0), 7.0, 23.0), x)
    problem = Sine2DProblem(xi=3.0, angle=10.0)
    batch = problem.sample(500, torch.Generator().manual_seed(1))
    assert batch.y_target.shape == (500, 2) and batch.x_true is None
    assert float(batch.y_target.abs().max()) <= 1.0 and float(batch.y_target.min()) < -0.95


@pytest.mark.parametrize("xi,angle", [(1.0, 45.0), (10.0, 45.0), (32.0, 0.0), (64.0, 23.0)])
def test_closest_solution_is_exact_and_closest(xi, angle):
    problem = Sine2DProblem(xi, angle)
    batch = problem.sample(300, torch.Generator().manual_seed(2))
    x = torch.randn(300, 2, dtype=DT)
    sol = closest_solution(x, batch.y_target, xi, angle)
    torch.testing.assert_close(problem.forward(sol), batch.y_target, atol=1e-10, rtol=0)
    # brute force: both branches, 2πn shifts around the current phase
    v = transform(x, xi, angle)
    base = torch.arcsin(batch.y_target[:, 0])
    n0 = torch.round(v[:, 0] / (2 * math.pi))
    best = torch.full((300,), math.inf, dtype=DT)
    for branch in (base, math.pi - base):
        for dn in range(-3, 4):
            v1 = branch + 2 * math.pi * (n0 + dn)
            cand = untransform(torch.stack([v1, batch.y_target[:, 1]], -1), xi, angle)
            best = torch.minimum(best, (cand - x).norm(dim=-1))
    dist = (sol - x).norm(dim=-1)
    torch.testing.assert_close(dist, best, atol=1e-9, rtol=1e-9)
    metrics = problem.metrics(x, batch)
    torch.testing.assert_close(metrics["x_dist"], dist)


def test_newton_minimization_cases():
    # positive definite, both eigenvalues at/above the geometric mean or tiny gradient: Newton
    h = torch.diag(torch.tensor([2.0, 8.0], dtype=DT)).unsqueeze(0)
    g = torch.tensor([[0.02, 0.08]], dtype=DT)
    torch.testing.assert_close(newton_minimization(g, h, 0.2), torch.tensor([[-0.01, -0.01]],
                                                                             dtype=DT))
    # large gradient along the low-curvature direction: limited to 0.2 / |g_eig|
    g = torch.tensor([[4.0, 0.08]], dtype=DT)
    torch.testing.assert_close(newton_minimization(g, h, 0.2), torch.tensor([[-0.05, -0.01]],
                                                                             dtype=DT))
    torch.testing.assert_close(newton_minimization(g, h, None), torch.tensor([[-2.0, -0.01]],
                                                                              dtype=DT))
    # negative curvature: still descending
    h = torch.diag(torch.tensor([-1.0, 4.0], dtype=DT)).unsqueeze(0)
    step = newton_minimization(torch.tensor([[1.0, 1.0]], dtype=DT), h, None)
    torch.testing.assert_close(step, torch.tensor([[-1.0, -0.25]], dtype=DT))
    # singular Hessian: no NaN, no step in the flat direction
    h = torch.zeros(1, 2, 2, dtype=DT)
    assert float(newton_minimization(torch.ones(1, 2, dtype=DT), h, 0.2).abs().max()) == 0.0


def test_closed_form_newton_matches_autodiff():
    for xi, angle in ((1.0, 45.0), (20.0, 35.0)):
        problem = Sine2DProblem(xi, angle)
        batch = problem.sample(64, torch.Generator().manual_seed(3))
        x = torch.randn(64, 2, dtype=DT)
        g1, h1 = Sine2DNewton(xi, angle).grad_and_hessian(x, batch.y_target, problem.forward)
        g2, h2 = LimitedNewton().grad_and_hessian(x, batch.y_target, problem.forward)
        torch.testing.assert_close(g1, g2)
        torch.testing.assert_close(h1, h2)


def test_newton_solves_well_conditioned_problem_in_few_steps():
    problem = Sine2DProblem(xi=1.0, angle=45.0)
    batch = problem.sample(200, torch.Generator().manual_seed(4))
    solver = problem.solvers(batch)["newton"]
    # near a solution (0.2 rad in phase) away from the flat peaks |y1*| = 1 (double roots):
    # quadratic convergence
    target = batch.y_target * torch.tensor([0.9, 1.0], dtype=DT)
    x_star = closest_solution(torch.randn(200, 2, dtype=DT), target, 1.0, 45.0)
    x = x_star + 0.02 * (2 * torch.rand(200, 2, dtype=DT) - 1)
    for _ in range(6):
        x = solver(x, target, problem.forward)
    assert float((problem.forward(x) - target).abs().max()) < 1e-12
    # from anywhere: every sample converges within 25 limited steps
    x = torch.randn(200, 2, dtype=DT)
    x = Sine2DNewton(1.0, 45.0, steps=25)(x, batch.y_target, problem.forward)
    assert float((problem.forward(x) - batch.y_target).abs().max()) < 1e-8


def test_l1_proxy_gradient_is_the_sign_of_the_step():
    problem = Sine2DProblem(xi=5.0, angle=30.0)
    batch = problem.sample(16, torch.Generator().manual_seed(5))
    x = (0.3 * torch.randn(16, 2)).requires_grad_(True)
    loss = L1Physical("newton").loss(x, batch, problem)
    loss.backward()
    x_n = problem.solvers(batch)["newton"](x.detach().double(), batch.y_target, problem.forward)
    expected = torch.sign(x.detach() - x_n.float()) / 16
    torch.testing.assert_close(x.grad, expected)


# -- experiments ---------------------------------------------------------------------------
def test_exp_experiment_smoke_and_prediction_figure(tmp_path):
    exp = get_experiment("exp")
    c = compare(exp, None, tmp_path, scale="smoke", iterations=30, progress=False)
    assert list(c.histories) == ["gd", "adam", "rescaled", "newton"]
    for h in c.histories.values():
        assert len(h) == 30 and all(math.isfinite(v) for v in h["x_l1"])
    made = predictions(tmp_path, points=50)  # keyed by label
    assert made.x_star.shape == (50,) and len(made.predictions) == len(c.histories)
    assert set(predictions(tmp_path, ["gd"]).predictions) == {"SGD"}
    assert [p.name for p in render(c)] == ["curves.png", "predictions.png"]
    assert (tmp_path / "predictions.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="no trained exp methods"):
        predictions(tmp_path / "empty")


def test_sine2d_experiment_smoke(tmp_path):
    exp = get_experiment("sine2d")
    c = compare(exp, None, tmp_path, scale="smoke", progress=False)
    render(c)
    assert list(c.histories) == ["pg-newton", "adam", "sgd", "rmsprop"]
    for h in c.histories.values():
        assert all(math.isfinite(v) for v in h["x_dist"] + h["y_l2"])
    # same init and data: the first logged prediction is identical for every method
    first = {m: h["x_dist"][0] for m, h in c.histories.items()}
    assert len(set(first.values())) == 1
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_sweep_writes_figure_and_table(tmp_path):
    made = sweep(tmp_path, iterations=10, methods=("pg-newton", "sgd"), xis=(1, 4),
                 angles=(0, 30), angle_sweep_xi=4, progress=False)
    assert render(made, tmp_path)[0] == tmp_path / "sweep.png"
    result = made.figures["sweep.png"].values
    assert result["xi"]["points"] == [1, 4] and len(result["angle"]["values"]["sgd"]) == 2
    # (xi 4, angle 0) is shared by both panels: relative value = absolute / xi
    assert result["xi"]["values"]["sgd"][1] == pytest.approx(result["angle"]["values"]["sgd"][0]
                                                             / 4)
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "sweep.json").read_text())["iterations"] == 10
    assert "x_dist" in (tmp_path / "sweep.md").read_text()
    assert sorted(p.name for p in tmp_path.glob("xi*")) == ["xi1_angle0", "xi4_angle0",
                                                            "xi4_angle30"]


def test_final_x_dist_is_mean_of_last_tenth():
    assert final_x_dist([float(i) for i in range(100)]) == pytest.approx(94.5)
    assert final_x_dist([3.0, 5.0]) == 5.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="xi"):
        Sine2DProblem(xi=0.0)
    with pytest.raises(TypeError, match="xi"):
        Sine2DProblem(xi="10")
    with pytest.raises(ValueError, match="angle"):
        Sine2DProblem(angle=math.nan)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Sine2DProblem().forward(torch.zeros(3, 3, dtype=DT))
    with pytest.raises(ValueError, match="max_step"):
        ExpNewton(0.0)
    with pytest.raises(ValueError, match="max_loss_change"):
        LimitedNewton(-1.0)
    with pytest.raises(ValueError, match="steps"):
        LimitedNewton(steps=0)
    with pytest.raises(TypeError, match="solver"):
        L1Physical(3)
    with pytest.raises(ValueError, match="method"):
        sweep("unused", methods=("nope",))
    with pytest.raises(ValueError, match="xi"):
        make_experiment(xi=-1.0)
    with pytest.raises(ValueError, match="non-finite"):
        Sine2DNewton(1.0, 0.0)(torch.full((2, 2), math.nan, dtype=DT), torch.zeros(2, 2,
                                                                                   dtype=DT),
                               sine2d_physics)
