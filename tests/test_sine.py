"""The sin(a/x) problem: analytic inverse, domain solvers, and the paper's ordering."""

import math

import numpy as np
import pytest
import torch

from physgrad.experiments import compare, get_experiment
from physgrad.experiments.sine import ClampedL1Backprop
from physgrad.problems.sine import SineProblem, nearest_minimum
from physgrad.report.figures import render
from physgrad.training import Trainer

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
    physics = problem.physics(batch)
    # start within +-0.5 rad of phase of a minimum, where every local method should improve
    x_star = nearest_minimum(torch.rand(256, 1, dtype=DT) * 2 + 0.5, batch.condition)
    phase = batch.condition / x_star + (torch.rand(256, 1, dtype=DT) - 0.5)
    x0 = batch.condition / phase
    h0 = (physics(x0) + 1).abs()
    for name, solver in problem.solvers(batch).items():
        if name == "clipped-gradient":  # the backprop baseline: a plain GD step may overshoot
            continue
        x1 = solver(x0, batch.y_target, physics)
        assert torch.isfinite(x1).all(), name
        h1 = (physics(x1) + 1).abs()
        assert torch.all(h1 <= h0 + 1e-12), name


def _heldout_median_error(method: str, seed: int, iterations: int) -> float:
    """Train ``method`` of ``sine`` (batch 100) and return the trained network's median
    ``|sin(a/x) + 1|`` over 1024 held-out problems."""
    experiment = get_experiment("sine")
    problem = experiment.problem()
    torch.manual_seed(seed)
    trainer = Trainer(problem, experiment.network(), experiment.methods[method].method(),
                      experiment.methods[method].optimizer, batch_size=100, seed=seed,
                      progress=False)
    trainer.train(iterations)
    heldout = problem.sample(1024, torch.Generator().manual_seed(12_345))
    with torch.no_grad():
        x = trainer.network(heldout)
    return float(problem.metrics(x, heldout)["y_l1"].median())


@pytest.mark.slow  # 6000 iterations at batch 100: ~15 s on an idle core
def test_pg_with_the_analytic_inverse_beats_adam_over_seeds():
    """Fig. 3's ordering at a small scale, as a distribution: one seed is chaotic (float
    summation order alone moves a seed's final error by orders of magnitude), so the test uses
    the median over 10 seeds of held-out errors. Measured on one machine (300 iterations):
    per-seed Adam/PG ratios from 1.5x to 6700x with median ~700x, and PG's median error ~5e-5;
    the asserted 10x and 1e-2 hold unless most seeds flip."""
    seeds = range(10)
    adam = [_heldout_median_error("adam", s, 300) for s in seeds]
    pg = [_heldout_median_error("pg-analytic", s, 300) for s in seeds]
    assert np.median(pg) < 1e-2  # an absolute accuracy: |sin(a/x) + 1| ~ 1e-5 typically
    assert np.median(np.array(adam) / np.array(pg)) > 10


def test_compare_writes_the_curves_and_the_table(tmp_path):
    render(compare(get_experiment("sine"), ["adam", "pg-analytic"], tmp_path, iterations=20,
                   batch_size=50, progress=False))
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "pg-analytic" in (tmp_path / "results.md").read_text()


def test_without_the_baseline_the_first_method_is_the_reference_in_table_and_legend(tmp_path):
    """Adam (sine's baseline) not compared: the ratios are to the first method, and every
    ratio column of the table has its line in the legend (it used to name the absent
    baseline, so those lines were missing)."""
    comparison = compare(get_experiment("sine"), ["pg-analytic", "pg-newton"], tmp_path,
                         iterations=4, batch_size=20, progress=False)
    assert comparison.baseline == "pg-analytic"
    columns = list(comparison.summary_rows()[0])
    ratios = [c for c in columns if "/ method" in c or "final" in c]
    assert ratios and all("pg-analytic" in c for c in ratios if "/ method" in c)
    legend = comparison.legend()
    assert all(f"`{c}`" in legend for c in ratios)


def test_paper_adam_backpropagates_the_clamped_l1_gradient():
    """``adam`` (B.2): dL/dx of the batch-mean L1 loss, clamped to [-1, 1], is what reaches
    the network; the loss value is that L1 loss."""
    problem = SineProblem()
    batch = problem.sample(8, torch.Generator().manual_seed(0))
    a = batch.condition
    # one prediction close to 0, where |dP/dx| / B exceeds the clamp; the others ordinary
    x = torch.tensor([[1e-3], [2.5], [-2.7], [3.0], [4.3], [-3.5], [2.9], [4.0]],
                     requires_grad=True)
    loss = ClampedL1Backprop().loss(x, batch, problem)
    loss.backward()
    xd = x.detach().double()
    expected_loss = (torch.sin(a / xd) + 1).abs().mean()
    dl_dx = torch.sign(torch.sin(a / xd) + 1) * torch.cos(a / xd) * (-a / xd**2) / 8
    assert abs(dl_dx[0, 0]) > 1 and torch.all(dl_dx[1:].abs() < 1)
    torch.testing.assert_close(loss.double(), expected_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(x.grad.double(), dl_dx.clamp(-1, 1), rtol=1e-5, atol=1e-12)


def test_sine_physics_is_finite_at_an_exact_zero_prediction():
    problem = SineProblem()
    batch = problem.sample(3, torch.Generator().manual_seed(1))
    x = torch.tensor([[0.0], [0.4], [-0.2]], dtype=DT)
    y = problem.physics(batch)(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[1:], torch.sin(batch.condition[1:] / x[1:]))


def test_clipped_gradient_step_is_backprop_with_clipped_dp_dx():
    problem = SineProblem()
    batch = problem.sample(64, torch.Generator().manual_seed(3))
    physics = problem.physics(batch)
    x0 = torch.rand(64, 1, dtype=DT) + 0.2
    x1 = problem.solvers(batch)["clipped-gradient"](x0, batch.y_target, physics)
    z = x0.clone().requires_grad_(True)
    (dp,) = torch.autograd.grad(physics(z).sum(), z)
    expected = x0 - (physics(x0) + 1) * dp.clamp(-1, 1)
    torch.testing.assert_close(x1, expected)
