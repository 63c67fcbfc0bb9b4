"""The sin(a/x) problem: analytic inverse, domain solvers, and the paper's ordering."""

import math

import numpy as np
import torch

from physgrad.experiments import compare, get_experiment
from physgrad.problems.sine import SineProblem, nearest_minimum

DT = torch.float64


def test_nearest_minimum_is_a_solution_and_is_nearest_in_inverse_x():
    a = torch.rand(200, 1, dtype=DT) * 10 + 0.1
    x0 = (torch.rand(200, 1, dtype=DT) - 0.5) * 6
    x = nearest_minimum(x0, a)
    torch.testing.assert_close(torch.sin(a / x), -torch.ones_like(x), atol=1e-12, rtol=0)
    assert torch.all(torch.sign(x) == torch.sign(x0))
    # no other minimum on the same side is closer in 1/x (the phase a/x)
    n = torch.round(a / (2 * math.pi * x) - 0.75)
    for dn in (-1, 1):
        other = a / (1.5 * math.pi + 2 * math.pi * (n + dn))
        same_side = torch.sign(other) == torch.sign(x0)
        closer = (a / other - a / x0).abs() < (a / x - a / x0).abs() - 1e-9
        assert not torch.any(same_side & closer)


def test_outermost_minima_for_far_guesses_and_zero_guess_is_finite():
    a = torch.tensor([[1.0], [1.0], [2.0]], dtype=DT)
    x0 = torch.tensor([[1e6], [-1e6], [0.0]], dtype=DT)
    x = nearest_minimum(x0, a)
    torch.testing.assert_close(x[:2], torch.tensor([[2 / (3 * math.pi)], [-2 / math.pi]], dtype=DT))
    assert torch.isfinite(x).all()


def test_domain_solvers_move_toward_a_minimum():
    problem = SineProblem()
    batch = problem.sample(256, torch.Generator().manual_seed(0))
    physics = problem.physics_for(batch)
    # start within +-0.5 rad of phase of a minimum, where every local method should improve
    x_star = nearest_minimum(torch.rand(256, 1, dtype=DT) * 2 + 0.5, batch.condition)
    phase = batch.condition / x_star + (torch.rand(256, 1, dtype=DT) - 0.5)
    x0 = batch.condition / phase
    h0 = (physics(x0) + 1).abs()
    for name, solver in problem.solvers_for(batch).items():
        if name == "clipped-gradient":  # the backprop baseline: a plain GD step may overshoot
            continue
        x1 = solver(x0, batch.y_target, physics)
        assert torch.isfinite(x1).all(), name
        h1 = (physics(x1) + 1).abs()
        assert torch.all(h1 <= h0 + 1e-12), name


def test_pg_with_the_analytic_inverse_beats_adam_by_orders_of_magnitude(tmp_path):
    """Fig. 3's ordering at a small scale (same init, same data)."""
    c = compare(get_experiment("sine"), ["adam", "pg-analytic"], tmp_path, iterations=600,
                batch_size=100, progress=False)
    adam = np.mean(c.histories["adam"]["y_l1"][-100:])
    pg = np.mean(c.histories["pg-analytic"]["y_l1"][-100:])
    assert pg < 1e-2 * adam
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "pg-analytic" in (tmp_path / "results.md").read_text()


def test_clipped_gradient_step_is_backprop_with_clipped_dp_dx():
    problem = SineProblem()
    batch = problem.sample(64, torch.Generator().manual_seed(3))
    physics = problem.physics_for(batch)
    x0 = torch.rand(64, 1, dtype=DT) + 0.2
    x1 = problem.solvers_for(batch)["clipped-gradient"](x0, batch.y_target, physics)
    z = x0.clone().requires_grad_(True)
    (dp,) = torch.autograd.grad(physics(z).sum(), z)
    expected = x0 - (physics(x0) + 1) * dp.clamp(-1, 1)
    torch.testing.assert_close(x1, expected)
