"""The ``fluid`` experiment: problem, reverse-simulation estimator, smoke run and figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from physgrad.core import physical_gradient_loss
from physgrad.experiments.base import get_experiment
from physgrad.experiments.fluid import fluid_network, marker_pair
from physgrad.experiments.fluid_figures import fluid_examples
from physgrad.experiments.runner import compare
from physgrad.physics.fluid import center_of_mass, centered_to_staggered, frequency_loss
from physgrad.problems.base import Batch
from physgrad.problems.fluid import (
    AUTHORS_SWIRL_NORM,
    FluidProblem,
    ReverseSimEstimator,
    measure_vortex_strength,
    swirl_norm,
    uniform_plus_vortex,
)
from physgrad.report.figures import render


@pytest.fixture(scope="module")
def problem() -> FluidProblem:
    return FluidProblem()


@pytest.fixture(scope="module")
def batch(problem: FluidProblem) -> Batch:
    return problem.sample(3, torch.Generator().manual_seed(0))


def test_network_parameters_and_registration() -> None:
    assert sum(p.numel() for p in fluid_network().parameters()) == 49_570
    exp = get_experiment("fluid")
    assert exp.default_methods == ("adam", "pg-reverse-sim")
    assert exp.metrics[:2] == ("v0_err", "v0_l1")


def test_problem_shapes_and_objective(problem: FluidProblem, batch: Batch) -> None:
    assert batch.y_target.shape == (3, 64, 64)
    assert batch.x_true is not None and batch.x_true.shape == (3, 2, 64, 64)
    assert batch.condition is not None and batch.condition.shape == (3, 64, 64)
    inp = marker_pair(batch)
    assert inp.shape == (3, 2, 64, 64) and inp.dtype == torch.float32
    torch.testing.assert_close(inp[:, 1], batch.y_target)
    y = problem.physics(batch)(batch.x_true)
    assert y.shape == (3, 64, 64)
    torch.testing.assert_close(
        problem.objective(y, batch.y_target), frequency_loss(y - batch.y_target)
    )
    m = problem.metrics(batch.x_true, batch)
    assert set(m) >= {"objective", "x_l1", "v0_err", "v0_l1", "y_l1", "y_l2"}
    assert float(m["v0_l1"].abs().max()) == 0.0
    zero = torch.zeros_like(batch.x_true)
    torch.testing.assert_close(problem.metrics(zero, batch)["v0_l1"],
                               batch.x_true.abs().sum(dim=(1, 2, 3)) / 4096)


def test_authors_v0_error_scores_what_the_simulator_sees(
    problem: FluidProblem, batch: Batch
) -> None:
    assert batch.x_true is not None
    truth = batch.x_true
    # v0 = 0 starts from rest: the error is the truth resampled to the faces and back,
    # as a vector length per cell, averaged over cells
    s = centered_to_staggered(truth)
    back = 0.5 * torch.stack([s[:, 0] + s[:, 0].roll(-1, -1), s[:, 1] + s[:, 1].roll(-1, -2)], 1)
    expected = back.pow(2).sum(dim=1).sqrt().mean(dim=(1, 2))
    zero = problem.metrics(torch.zeros_like(truth), batch)["v0_err"]
    torch.testing.assert_close(zero, expected)
    # the truth scores only its own divergent part (the simulator projects, the data does not)
    exact = problem.metrics(truth, batch)
    assert float(exact["v0_err"].max()) < 0.05 * float(zero.min())
    # a checkerboard in the centred output is invisible to the simulator: v0_err ignores it,
    # the raw v0_l1 counts it
    checker = torch.ones(64, 64)
    checker[:, 1::2] = -1.0
    noisy = truth + 3.0 * torch.stack([checker, checker.T])
    m = problem.metrics(noisy, batch)
    torch.testing.assert_close(m["v0_err"], exact["v0_err"], atol=1e-4, rtol=1e-4)
    assert float(m["v0_l1"].min()) > 5.0


@pytest.mark.parametrize("method", ["adam", "pg-reverse-sim"])
def test_metrics_reuse_the_training_forward_simulation(method: str, batch: Batch) -> None:
    problem = FluidProblem()
    x = fluid_network()(batch)
    get_experiment("fluid").methods[method].method().loss(x, batch, problem)
    assert problem._forward_cache.recall(x.detach(), batch.condition) is not None
    reused = problem.metrics(x.detach(), batch)
    problem._forward_cache = type(problem._forward_cache)()  # empty: simulate again
    assert problem._forward_cache.recall(x.detach(), batch.condition) is None
    fresh = problem.metrics(x.detach(), batch)
    for name, value in fresh.items():
        torch.testing.assert_close(reused[name], value, atol=0, rtol=0)
    # a different prediction or other markers never hit
    problem.physics(batch)(x.detach())
    assert problem._forward_cache.recall(x.detach() + 1e-3, batch.condition) is None
    assert problem._forward_cache.recall(x.detach(), batch.condition.clone()) is None


def test_vortex_measure_matches_authors_norm() -> None:
    assert swirl_norm(FluidProblem().domain) == pytest.approx(AUTHORS_SWIRL_NORM, rel=1e-3)
    w = torch.tensor([1.5, -0.7])
    v = uniform_plus_vortex(torch.tensor([[3.0, -2.0], [0.5, 1.0]]), w)
    torch.testing.assert_close(measure_vortex_strength(v), w, atol=1e-4, rtol=1e-4)


def test_estimator_recovers_uniform_and_vortex(problem: FluidProblem, batch: Batch) -> None:
    m0 = batch.condition
    assert m0 is not None
    centre = torch.tensor([64.0, 64.0])
    uniform = (centre - center_of_mass(m0)) / 2.0
    w = torch.tensor([1.5, -1.0, 0.8])
    v_true = uniform_plus_vortex(uniform, w)  # a pure (uniform + vortex) ground truth
    mt = problem.simulator.simulate(m0, v_true)
    target_batch = Batch(y_target=mt, x_true=v_true, condition=m0)
    solver = problem.solvers(target_batch)["reverse-sim"]
    physics = problem.physics(target_batch)
    errors = []
    for offset in (1.0, -1.0):
        x0 = uniform_plus_vortex(torch.zeros(3, 2), w + offset)  # no drift, wrong strength
        est = solver(x0, mt, physics)
        assert est.shape == x0.shape and est.dtype == x0.dtype
        w_est = measure_vortex_strength(est)
        # the uniform part is recovered exactly (it only depends on m0) ...
        torch.testing.assert_close(est - uniform_plus_vortex(torch.zeros(3, 2), w_est),
                                   uniform[:, :, None, None].expand_as(est), atol=1e-4, rtol=0)
        errors.append(((w_est - w).abs().mean(), torch.tensor(abs(offset))))
    # ... and the vortex strength moves toward the truth from a perturbed start
    for after, before in errors:
        assert after < 0.9 * before
    # the proxy loss gradient is x - estimate (batch mean)
    x = uniform_plus_vortex(uniform, w + 0.5).requires_grad_(True)
    physical_gradient_loss(x, mt, physics, solver).backward()
    est = solver(x.detach(), mt, physics)
    torch.testing.assert_close(x.grad, (x.detach() - est) / 3, atol=1e-5, rtol=1e-4)


def test_estimator_dt_factor_variant_differs(problem: FluidProblem, batch: Batch) -> None:
    assert batch.condition is not None and batch.x_true is not None
    a = ReverseSimEstimator(batch.condition, problem.simulator)
    b = ReverseSimEstimator(batch.condition, problem.simulator, dt_factor=True)
    physics = problem.physics(batch)
    xa, xb = (s(batch.x_true, batch.y_target, physics) for s in (a, b))
    assert not torch.allclose(xa, xb)
    assert "dt_factor=False" in repr(a)


def test_bad_inputs(problem: FluidProblem, batch: Batch) -> None:
    assert batch.x_true is not None and batch.condition is not None
    with pytest.raises(TypeError, match="expected the Batch whose m0 to bind, got Tensor"):
        problem.physics(batch.x_true)
    with pytest.raises(ValueError, match="condition"):
        problem.physics(Batch(batch.y_target, batch.x_true, None))
    with pytest.raises(ValueError, match="condition"):
        problem.physics(Batch(batch.y_target, batch.x_true, batch.condition[:, :32]))
    wrong = fluid_network()
    wrong.outc = torch.nn.Conv2d(16, 1, 1)  # one output channel: refused, naming the shape
    with pytest.raises(ValueError, match=r"network output must have shape \(3, 2, 64, 64\)"):
        wrong(batch)
    with pytest.raises(ValueError, match="condition = m0"):
        fluid_network()(Batch(batch.y_target, batch.x_true, None))
    with pytest.raises(ValueError, match="marker0"):
        ReverseSimEstimator(torch.zeros(2, 32, 32))
    solver = problem.solvers(batch)["reverse-sim"]
    physics = problem.physics(batch)
    with pytest.raises(ValueError, match="x0 must have shape"):
        solver(torch.zeros(3, 1, 64, 64), batch.y_target, physics)
    with pytest.raises(ValueError, match="samples"):
        solver(batch.x_true[:2], batch.y_target[:2], physics)
    with pytest.raises(TypeError):
        FluidProblem(domain=64)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        fluid_examples(Path("/nonexistent/fluid-run"))


def test_smoke_compare_and_figures(tmp_path: Path) -> None:
    comparison = compare(get_experiment("fluid"), out=tmp_path, scale="smoke", progress=False)
    render(comparison)
    assert set(comparison.histories) == {"adam", "pg-reverse-sim"}
    for method in ("adam", "pg-reverse-sim"):
        header = (tmp_path / method / "metrics.csv").read_text().splitlines()[0]
        assert "v0_l1" in header and "objective" in header
        assert (tmp_path / method / "checkpoint.pt").exists()
    assert (tmp_path / "results.md").exists()
    for name in ("fig13_examples.png", "fig6b_single_problem.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    curves = json.loads((tmp_path / "fig6b_single_problem.json").read_text())
    assert len(curves["objective"]["GD"]) == 4  # smoke: 3 iterations + start
    table = (tmp_path / "table1.md").read_text()
    assert "| Adam + PG (reverse sim.) |" in table and "Reverse sim." in table
    for start in ("| v0 = 0 |", "| the Adam + PG network's prediction |", "| drift guess |"):
        assert start in table
    # GD cannot leave v0 = 0: the energy rescale makes its gradient exactly zero there
    assert "| GD | v0 = 0 |" in table and "(stalled: its first step left v0 unchanged)" in table
    assert "Training, Adam + PG vs Adam" in table and "at iteration 200 | run shorter" in table
    assert "training-batch v0_err" in table
    assert "Held-out accuracy on 4 fresh problems" in table and "| v0 = 0 |" in table


def test_held_out_errors_score_a_zero_network_like_v0_zero():
    import torch

    from physgrad.experiments.fluid_figures import held_out_errors
    from physgrad.problems.fluid import FluidProblem

    class Zero(torch.nn.Module):  # takes the batch, as the experiment's adapted network
        def forward(self, batch):
            return torch.zeros(len(batch), 2, *batch.y_target.shape[1:])

    errors = held_out_errors({"zero": Zero()}, FluidProblem(), examples=3)
    assert set(errors) == {"zero", "drift guess", "v0 = 0"}
    for metric in ("v0_err", "v0_l1"):  # the drift is most of v0
        assert errors["zero"][metric] == pytest.approx(errors["v0 = 0"][metric])
        assert errors["drift guess"][metric][0] < errors["v0 = 0"][metric][0]


def test_lbfgsb_check_and_its_sentence():
    from helpers import load_script

    study = load_script("benchmarks/bench_fluid_lbfgsb.py")
    lbfgsb_sentence, lbfgsb_vs_gd = study.lbfgsb_sentence, study.lbfgsb_vs_gd

    result = lbfgsb_vs_gd(2, examples=2)
    for name in ("GD", "L-BFGS-B"):
        assert len(result[name]["v0_err"]) == 3 and len(result[name]["objective"]) == 3
        assert result[name]["objective"][-1] < result[name]["objective"][0]  # both descend
    assert result["L-BFGS-B"]["evaluations"] >= 2
    sentence = lbfgsb_sentence(result)
    assert sentence.startswith("On 2 fluid problems from the drift guess, after 2 iterations")
    assert f"{result['GD']['v0_err'][-1]:.3g}" in sentence
    fake = {**result, "L-BFGS-B": {**result["L-BFGS-B"], "v0_err": [1.0, 0.5, 0.1]},
            "GD": {**result["GD"], "v0_err": [1.0, 0.9, 0.8]}}
    assert "has an advantage in v0 (8x lower" in lbfgsb_sentence(fake)


def test_physics_checks_markers_again_after_an_in_place_change(batch: Batch) -> None:
    """:meth:`FluidProblem.physics` checks a batch's markers once (a training step binds them
    twice) but again when they were changed in place."""
    problem = FluidProblem()
    markers = batch.condition
    assert markers is not None
    assert problem.physics(batch).physics is problem.physics(batch).physics
    changed = Batch(y_target=batch.y_target, x_true=batch.x_true, condition=markers.clone())
    problem.physics(changed)
    changed.condition[0, 0, 0] = float("nan")  # type: ignore[index]
    with pytest.raises(ValueError, match="non-finite"):
        problem.physics(changed)
